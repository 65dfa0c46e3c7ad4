#!/usr/bin/env bash
# Issue 10's GPU measurements, from the project root on a GPU machine (../shared/gpu/README.md):
#   bash bench/gpu_job.sh bench    # train_throughput GPT-2 124M, nanoGPT's bench.py compiled, then Llama 124M
#   bash bench/gpu_job.sh checks   # every GPU path trains, checkpoints and resumes (bench/gpu_checks.py)
#   bash bench/gpu_job.sh docmask  # document masking (FlexAttention) vs the plain causal path, GPT-2 124M
#   bash bench/gpu_job.sh gpuslots # a 2-job sweep, 1 GPU each, on one GPU: the second waits for the slot
#   bash bench/gpu_job.sh all      # both, most important first, each part time-limited (one device call)
# It needs .gpu/ (made here by `bash ../shared/gpu/stage.sh`; git-ignored, so send it along). Logs and JSON
# go to $OUT (the device tool's return folder) or outputs/gpu; ROUNDS=3 for more interleaved rounds.
set -uo pipefail
source .gpu/setup.sh || exit 1
final=${OUT:-outputs/gpu}
out=/tmp/lmlab-gpu-job  # everything here; $final gets the summaries and one archive of all the logs
mkdir -p "$out" "$final"
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv | tee "$out/gpu.txt"

bench() {  # $1: model, $2: time limit (s), then train_throughput's options
  local model=$1 limit=$2; shift 2
  timeout "$limit" python3 bench/train_throughput.py "$@" --rounds "${ROUNDS:-1}" --model "$model" --json "$out/$model.json" \
    --log-dir "$out/$model-workers" 2>&1 | tee "$out/$model.log"
}
nanogpt() {  # the anchor: nanoGPT @3adf61e unmodified; its MFU assumes an A100 (312 TFLOP/s): x 312/989.4
  (cd .gpu/nanogpt && timeout "$1" python3 bench.py --real_data=False --compile=True --batch_size=16) 2>&1 \
    | tee "$out/nanogpt-compiled.log"
}
checks() {  # the four checks side by side (one GPU has room for all); graph breaks logged for the compiled one
  for name in preset compile fp16 fsdp; do
    TORCH_LOGS=graph_breaks timeout "$1" python3 bench/gpu_checks.py --only "$name" --out "/tmp/lmlab-gpu-checks/$name" \
      > "$out/checks-$name.log" 2>&1 &
  done
  wait
  cat "$out"/checks-*.log
  for name in preset compile fp16 fsdp; do  # logs and metrics, not the checkpoints
    mkdir -p "$out/checks/$name"
    cp /tmp/lmlab-gpu-checks/$name/*.log /tmp/lmlab-gpu-checks/$name/*.json /tmp/lmlab-gpu-checks/$name/$name/metrics.csv \
      "$out/checks/$name/" 2>/dev/null
  done
}
docmask() {  # issue 26: data.document_masking on the GPU (FlexAttention block mask, compiled) vs plain causal
  for masking in false true; do
    timeout "$1" python3 -m lmlab.train model=gpt2-124m trainer=gpu model.compile=true model.config.attn_pdrop=0 \
      data.document_masking=$masking trainer.max_steps=60 trainer.val_check_interval=60 callbacks.samples=null \
      callbacks.export_hf=null run_dir="$out/docmask-$masking" > "$out/docmask-$masking.log" 2>&1
    cp "$out/docmask-$masking/summary.json" "$out/docmask-$masking.json" 2>/dev/null
  done
}
gpuslots() {  # issue 25: 2 jobs x 1 GPU on a 1-GPU machine (local_gpus launcher): one after the other, both finish
  CUDA_VISIBLE_DEVICES=0 timeout "$1" python3 -m lmlab.train -m hydra/launcher=local_gpus trainer=gpu debug=fast \
    optimizer.lr=1e-3,3e-4 sweep_name=gpuslots paths.output_dir="$out/gpuslots" > "$out/gpuslots.log" 2>&1
  python3 - "$out/gpuslots/clm/multirun/gpuslots" <<'PY' | tee "$out/gpuslots.json"
import json, sys, pathlib
sweep = pathlib.Path(sys.argv[1])
def job(p):
    run = json.loads((p / "run.json").read_text())
    done = p / "finished.json"
    return {"gpus": run.get("cuda_visible_devices"), "started": run["started"],
            "finished_at": done.stat().st_mtime if done.is_file() else None}
jobs = {p.name: job(p) for p in sorted(sweep.iterdir()) if p.name.isdigit()}
print(json.dumps(jobs))
PY
}

case "${1:-bench}" in
  bench) bench gpt2-124m 900; nanogpt 600; bench llama-124m 900 ;;
  checks) checks 900 ;;
  docmask) docmask 300 ;;
  gpuslots) gpuslots 300 ;;
  all) bench gpt2-124m 220; nanogpt 100; checks 140; bench llama-124m 130 --variants lmlab raw ;;
  *) echo "usage: bash bench/gpu_job.sh bench|checks|docmask|gpuslots|all" >&2; exit 2 ;;
esac
echo "done after ${SECONDS}s"
# the device tool returns at most 8 files: the figures, the check results, the anchor's log, and one archive
cat "$out"/checks-*.log > "$out/checks.log" 2>/dev/null
cp "$out"/*.json "$out/checks.log" "$out/nanogpt-compiled.log" "$out/gpu.txt" "$final/" 2>/dev/null
tar czf "$final/logs.tar.gz" -C "$out" .
