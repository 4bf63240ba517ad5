#!/usr/bin/env bash
# The allocator settings wdqa starts with (wdqa/core/allocator.py), measured side by side: the same
# diff-training benchmark with glibc's defaults (WDQA_DEFAULT_MALLOC=1) and with wdqa's settings,
# printing wall, user and system seconds, minor page faults and peak memory of each whole run.
# Usage: bash experiments/allocator.sh [N_DIFFS] [STEPS]     (needs GNU time: /usr/bin/time)
set -euo pipefail
n=${1:-16}
steps=${2:-30}
for mode in glibc-defaults wdqa; do
  opt=$([ "$mode" = glibc-defaults ] && echo 1 || echo 0)
  env -u MALLOC_MMAP_MAX_ -u MALLOC_MMAP_THRESHOLD_ -u MALLOC_TRIM_THRESHOLD_ -u MALLOC_TOP_PAD_ WDQA_DEFAULT_MALLOC=$opt \
    /usr/bin/time -f "%e %U %S %R %M" -o "/tmp/wdqa-alloc-$mode.txt" \
    wdqa bench train --n "$n" --steps "$steps" --threads 1 --no-compile > /dev/null
done
printf '%-15s %8s %8s %8s %14s %12s\n' allocator wall_s user_s sys_s minor_faults max_rss_MB
for mode in glibc-defaults wdqa; do
  read -r wall user sys faults rss < <(tail -n 1 "/tmp/wdqa-alloc-$mode.txt")
  printf '%-15s %8s %8s %8s %14s %12s\n' "$mode" "$wall" "$user" "$sys" "$faults" "$((rss / 1024))"
done
