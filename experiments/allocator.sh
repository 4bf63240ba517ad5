#!/usr/bin/env bash
# The allocator settings wdqa starts with (wdqa/core/allocator.py), measured side by side on two
# workloads: diff training (`wdqa bench train`) and the tiny base's pretraining
# (experiments/base_threads.py, 2 threads: its logits and their gradients are 164 MB each). Three
# settings: glibc's defaults; thresholds only (mmap above 32 MiB, trim above 1 GiB: wdqa's settings
# before 2026-12-01); wdqa's (no mmap for the main heap as well). Prints wall, user and system
# seconds, minor page faults and peak memory of each whole run.
# Usage: bash experiments/allocator.sh [N_DIFFS] [STEPS] [BASE_STEPS]   (needs GNU time: /usr/bin/time)
set -euo pipefail
n=${1:-16}
steps=${2:-30}
base_steps=${3:-8}
here=$(dirname "$0")
run() {  # mode, label, command...
  local mode=$1 label=$2; shift 2
  local env=(env -u MALLOC_MMAP_MAX_ -u MALLOC_MMAP_THRESHOLD_ -u MALLOC_TRIM_THRESHOLD_ -u MALLOC_TOP_PAD_)
  case $mode in
    glibc-defaults) env+=(WDQA_DEFAULT_MALLOC=1) ;;
    thresholds-only) env+=(WDQA_DEFAULT_MALLOC=1 MALLOC_MMAP_THRESHOLD_=$((32 << 20)) MALLOC_TRIM_THRESHOLD_=$((1 << 30))
                           MALLOC_TOP_PAD_=$((256 << 20))) ;;
    wdqa) env+=(WDQA_DEFAULT_MALLOC=0) ;;
  esac
  "${env[@]}" /usr/bin/time -f "%e %U %S %R %M" -o "/tmp/wdqa-alloc-$label-$mode.txt" "$@" > /dev/null
}
modes=(glibc-defaults thresholds-only wdqa)
for mode in "${modes[@]}"; do
  run "$mode" train wdqa bench train --n "$n" --steps "$steps" --threads 1 --no-compile
  # base_threads.py does not start through the wdqa command: it tunes the allocator itself when asked
  run "$mode" base python "$here/base_threads.py" --steps "$base_steps" --threads 2
done
printf '%-32s %8s %8s %8s %14s %12s\n' workload/allocator wall_s user_s sys_s minor_faults max_rss_MB
for label in train base; do
  for mode in "${modes[@]}"; do
    read -r wall user sys faults rss < <(tail -n 1 "/tmp/wdqa-alloc-$label-$mode.txt")
    printf '%-32s %8s %8s %8s %14s %12s\n' "$label/$mode" "$wall" "$user" "$sys" "$faults" "$((rss / 1024))"
  done
done
