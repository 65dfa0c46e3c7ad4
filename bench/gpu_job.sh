#!/usr/bin/env bash
# Every GPU measurement of lmlab's open issues as named stages, most important first, in ONE call on a GPU
# machine (docs/gpu.md). From the project root, after `bash bench/stage_gpu.sh` made .gpu/ (git-excluded:
# send it along):
#   bash bench/gpu_job.sh all              # every stage in order within BUDGET seconds (default 530)
#   bash bench/gpu_job.sh fp8 startup      # some stages, in the order given
#   bash bench/gpu_job.sh --list           # the stages and their time caps
#   DRY_RUN=1 bash bench/gpu_job.sh all    # print each stage's commands, run nothing (checked on CPU by tests)
# A stage gets at most its cap and what is left of BUDGET; a stage that fails or runs out of time is recorded
# in stages.tsv and the next one starts. Logs and JSON go to $OUT (the device tool's return folder, which
# takes back at most 8 files) or outputs/gpu: results.json, stages.tsv, <gpu>-gpt2-124m.json, logs.tar.gz.
# To add a stage: write `stage_<name>() { ...; }` (commands through `x`, each under `timeout "$cap"`) and put
# `<name>:<cap seconds>` into STAGES where its priority belongs.
set -uo pipefail
STAGES=(gpt2:110 nanogpt:60 llama:90 fp8:170 startup:160 candidates:330 profile:90 checks:140 docmask:150 bigmodels:240 gpuslots:120)
BUDGET=${BUDGET:-530}
DRY_RUN=${DRY_RUN:-}
LLAMA_1B=${LLAMA_1B:-model=llama-1b}  # issue 22's config; model=llama-124m + shape overrides where it is missing
x() { if [[ -n $DRY_RUN ]]; then echo "  + $*"; else "$@"; fi; }  # run a command (or show it)

bench() {  # $1: model, then train_throughput's options; lmlab's variant only (the raw loop and HF were measured)
  local model=$1; shift
  x timeout "$cap" python3 bench/train_throughput.py --rounds "${ROUNDS:-1}" --model "$model" --variants lmlab "$@" \
    --log-dir "$out/$stage-workers" --json "$out/$stage.json"
}
stage_gpt2() { bench gpt2-124m; }
stage_nanogpt() {  # the anchor in the same job: nanoGPT @3adf61e unmodified (MFU printed for an A100: x 312/989.4)
  x timeout "$cap" bash -c 'cd .gpu/nanogpt && exec python3 bench.py --real_data=False --compile=True --batch_size=16'
}
stage_llama() { bench llama-124m; }
stage_startup() {  # time to the first optimizer step: a fresh compile cache (cold), then the same launch again (warm)
  local scope cache launch limit
  for scope in true regional; do
    cache=/tmp/lmlab-compile-cold-$scope
    x rm -rf "$cache"
    for launch in cold warm; do  # the cold launch gets 3/10 of the stage's time, the warm one 1/5
      if [[ $launch == cold ]]; then limit=$((cap * 3 / 10)); else limit=$((cap / 5)); fi
      x timeout "$limit" python3 -m lmlab.train experiment=pretrain_gpu "model.compile=$scope" trainer.max_steps=2 \
        trainer.limit_val_batches=0 callbacks.samples=null callbacks.export_hf=null "paths.compile_cache_dir=$cache" \
        "run_dir=/tmp/lmlab-startup/$scope-$launch"
      x cp "/tmp/lmlab-startup/$scope-$launch/summary.json" "$out/startup-$scope-$launch.json"
    done
  done
}
stage_fp8() {  # Llama 1B, bf16 then FP8: 200-step loss curves and tokens/s (acceptance: FP8 >= 1.2x, loss within tolerance)
  local model=("$LLAMA_1B")
  [[ -f conf/model/llama-1b.yaml ]] || model=(model=llama-124m model.config.hidden_size=2048 \
    model.config.num_hidden_layers=16 model.config.intermediate_size=8192 model.config.num_attention_heads=32 \
    model.config.num_key_value_heads=8 model.config.max_position_embeddings=1024)
  for fp8 in false true; do
    x timeout "$((cap / 2))" python3 -m lmlab.train experiment=pretrain_gpu "${model[@]}" "model.fp8=$fp8" \
      data.batch_size=4 trainer.max_steps=200 trainer.val_check_interval=200 trainer.limit_val_batches=2 \
      trainer.log_every_n_steps=10 callbacks.samples=null callbacks.export_hf=null "run_dir=/tmp/lmlab-fp8/$fp8"
  done
  x python3 bench/compare_runs.py /tmp/lmlab-fp8/false /tmp/lmlab-fp8/true --labels bf16 fp8 --json "$out/fp8.json"
}
stage_candidates() {  # each switch that might pass nanoGPT, alone against the default (off until measured)
  local candidate i=0
  for candidate in model.bias=false model.compile=regional model.compile_mode=max-autotune-no-cudagraphs \
      model.compile_mode=reduce-overhead task.module.fused_loss=true "callbacks.progress_bar=null trainer.enable_progress_bar=false"; do
    i=$((i + 1))
    # shellcheck disable=SC2086  # a candidate may be several overrides
    x timeout "$((cap / 6))" python3 bench/train_throughput.py --rounds 1 --variants lmlab --set $candidate \
      --json "$out/candidate-$i.json"
  done
}
stage_profile() { x timeout "$cap" python3 bench/step_profile.py experiment=pretrain_gpu --out "$out/step_profile.json"; }
stage_checks() {  # issue 10's four checks side by side (one GPU has room for all): train, checkpoint, resume
  local name
  for name in preset compile fp16 fsdp; do
    x timeout "$cap" python3 bench/gpu_checks.py --only "$name" --out "/tmp/lmlab-gpu-checks/$name" > "$out/checks-$name.log" 2>&1 &
  done
  wait
  cat "$out"/checks-*.log
}
stage_docmask() {  # issue 26: data.document_masking on the GPU (FlexAttention block mask, compiled) vs plain causal
  local masking
  for masking in false true; do
    x timeout "$((cap / 2))" python3 -m lmlab.train model=gpt2-124m trainer=gpu model.compile=true \
      model.config.attn_pdrop=0 data.document_masking=$masking trainer.max_steps=60 trainer.val_check_interval=60 \
      callbacks.samples=null callbacks.export_hf=null run_dir="/tmp/lmlab-docmask-$masking"
    x cp "/tmp/lmlab-docmask-$masking/summary.json" "$out/docmask-$masking.json"
  done
}
stage_gpuslots() {  # issue 25: a 2-job sweep with 1 GPU each on a 1-GPU machine runs them one after the other
  x env CUDA_VISIBLE_DEVICES=0 timeout "$cap" python3 -m lmlab.train -m hydra/launcher=local_gpus trainer=gpu \
    debug=fast optimizer.lr=1e-3,3e-4 sweep_name=gpuslots paths.output_dir=/tmp/lmlab-gpuslots
  x python3 -c 'import json, pathlib, sys; print(json.dumps({p.name: {"gpus": json.loads((p / "run.json").read_text())
      .get("cuda_visible_devices"), "started": json.loads((p / "run.json").read_text())["started"],
      "finished_at": (p / "finished.json").stat().st_mtime if (p / "finished.json").is_file() else None}
      for p in sorted(pathlib.Path(sys.argv[1]).iterdir()) if p.name.isdigit()}))' \
    /tmp/lmlab-gpuslots/clm/multirun/gpuslots | tee "$out/gpuslots.json"
}
stage_bigmodels() {  # issue 22: llama-1b bf16 compiled, FSDP world size 1, activation checkpointing off then on
  # (tokens/s, MFU, peak in summary.json); llama-3b with checkpointing: 5 real steps beside bench/memory.py's estimate
  local ac
  for ac in none full; do
    x timeout "$((cap / 3))" python3 -m lmlab.train "$LLAMA_1B" trainer=fsdp trainer.devices=1 model.compile=true \
      model.activation_checkpointing=$ac data.vocab_size=32000 data.block_size=2048 data.batch_size=4 \
      trainer.max_steps=30 trainer.val_check_interval=30 trainer.log_every_n_steps=5 callbacks.samples=null \
      callbacks.export_hf=null run_dir="/tmp/lmlab-llama1b-ac-$ac"
    x cp "/tmp/lmlab-llama1b-ac-$ac/summary.json" "$out/llama1b-ac-$ac.json"
  done
  x timeout "$((cap / 3))" python3 bench/memory.py model=llama-3b data.vocab_size=128256 data.block_size=2048 \
    data.batch_size=2 trainer=fsdp trainer.devices=1 model.activation_checkpointing=full --steps 5 \
    --json "$out/memory-llama3b.json"
}

case "${1:-all}" in
  --list) printf '%s\n' "${STAGES[@]}" | tr ':' '\t'; exit 0 ;;
  all) names=("${STAGES[@]%%:*}") ;;
  *) names=("$@") ;;
esac
declare -A caps
for s in "${STAGES[@]}"; do caps[${s%%:*}]=${s##*:}; done
for name in "${names[@]}"; do
  [[ -n ${caps[$name]:-} ]] || { echo "error: unknown stage '$name' (bash bench/gpu_job.sh --list)" >&2; exit 2; }
done

final=${OUT:-outputs/gpu}
out=/tmp/lmlab-gpu-job  # everything here; $final gets the summaries and one archive of all the logs
mkdir -p "$out" "$final"
if [[ -z $DRY_RUN ]]; then
  source .gpu/setup.sh || exit 1
  nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv | tee "$out/gpu.txt"
fi
printf 'stage\tstatus\tseconds\tcap\n' > "$out/stages.tsv"
spent=0  # a dry run counts every stage as using its whole cap: the worst case
for stage in "${names[@]}"; do
  [[ -n $DRY_RUN ]] || spent=$SECONDS
  left=$((BUDGET - spent - 15))  # 15 s kept for packing the results
  cap=$(( caps[$stage] < left ? caps[$stage] : left ))
  if (( cap < 20 )); then
    printf '%s\tskipped (budget spent)\t0\t%s\n' "$stage" "${caps[$stage]}" >> "$out/stages.tsv"; continue
  fi
  echo "== $stage (at most ${cap}s, ${spent}s into the job)"
  start=$SECONDS
  "stage_$stage" 2>&1 | tee "$out/$stage.log"
  status=${PIPESTATUS[0]}
  case $status in 0) word=ok ;; 124|137) word="timed out" ;; *) word="failed ($status)" ;; esac
  printf '%s\t%s\t%s\t%s\n' "$stage" "$word" "$((SECONDS - start))" "$cap" >> "$out/stages.tsv"
  spent=$((spent + cap))
done
cat "$out/stages.tsv"
[[ -n $DRY_RUN ]] && exit 0
gpu=$(python3 -c "import torch; print(torch.cuda.get_device_name().split()[1].lower())" 2>/dev/null || echo gpu)
python3 bench/gpu_results.py "$out" --json "$final/results.json" --gpt2-json "bench/results/$gpu-gpt2-124m.json"
echo "done after ${SECONDS}s"
cp "$out/stages.tsv" "bench/results/$gpu-gpt2-124m.json" "$final/" 2>/dev/null
tar czf "$final/logs.tar.gz" -C "$out" .
