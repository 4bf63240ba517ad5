#!/usr/bin/env bash
# The GPU check: train, eval, DIT and dense benches on random-weight Qwen3-1.7B- and Qwen3-4B-shaped
# models, on CUDA in bf16, with no network; every figure (diffs/s, tokens/s, TFLOP/s against the
# GPU's bf16 peak, peak memory, every batched-vs-PEFT ratio) goes into one JSON file.
#
#   bash scripts/gpu-check.sh                       # on a GPU: writes gpu-check.json (<= 8 min on an H100/H200)
#   bash scripts/gpu-check.sh --peak-tflops 400     # a GPU the peak table does not know
#   bash scripts/gpu-check.sh --smoke --out x.json  # toy shapes on the CPU (what the test runs)
#
# PYTHON picks the interpreter (default: python); GPU_CHECK_TIMEOUT the limit in seconds (default 480).
set -euo pipefail

out="gpu-check.json"
args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --out=*) out="${1#--out=}"; shift ;;
    *) args+=("$1"); shift ;;
  esac
done

# Nothing is fetched: the models are built here with random weights, the tokenizer is learned locally.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
exec timeout --signal=INT "${GPU_CHECK_TIMEOUT:-480}" "${PYTHON:-python}" -m wdqa.gpu_check --out "$out" ${args[@]+"${args[@]}"}
