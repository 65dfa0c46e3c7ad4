#!/usr/bin/env bash
# Issue 10's GPU measurements, from the project root on a GPU machine (../shared/gpu/README.md):
#   bash bench/gpu_job.sh bench    # train_throughput GPT-2 124M, nanoGPT's bench.py compiled, then Llama 124M
#   bash bench/gpu_job.sh checks   # every GPU path trains, checkpoints and resumes (bench/gpu_checks.py)
# It needs .gpu/ (made here by `bash ../shared/gpu/stage.sh`; git-ignored, so send it along). Logs and JSON
# go to $OUT (the device tool's return folder) or outputs/gpu; ROUNDS=3 for more interleaved rounds.
set -uo pipefail
source .gpu/setup.sh || exit 1
out=${OUT:-outputs/gpu}
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv | tee "$out/gpu.txt"
case "${1:-bench}" in
  bench)
    python3 bench/train_throughput.py --rounds "${ROUNDS:-1}" --json "$out/gpt2-124m.json" 2>&1 | tee "$out/gpt2-124m.log"
    # the anchor: nanoGPT @3adf61e unmodified; its MFU assumes an A100 (312 TFLOP/s): x 312/989.4 for an H100
    (cd .gpu/nanogpt && python3 bench.py --real_data=False --compile=True --batch_size=16) 2>&1 \
      | tee "$out/nanogpt-compiled.log"
    python3 bench/train_throughput.py --rounds "${ROUNDS:-1}" --model llama-124m --json "$out/llama-124m.json" 2>&1 \
      | tee "$out/llama-124m.log"
    ;;
  checks)
    python3 bench/gpu_checks.py --out /tmp/lmlab-gpu-checks 2>&1 | tee "$out/checks.log"
    cp /tmp/lmlab-gpu-checks/*.log /tmp/lmlab-gpu-checks/gpu_checks.json "$out/" 2>/dev/null
    ;;
  *) echo "usage: bash bench/gpu_job.sh bench|checks" >&2; exit 2 ;;
esac
