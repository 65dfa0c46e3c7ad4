"""Peak memory per device of real training steps beside an analytic estimate: plan a run before renting GPUs.

    python bench/memory.py model=llama-1b data.vocab_size=32000 data.block_size=2048 data.batch_size=4 \
        trainer=gpu model.activation_checkpointing=full                     # measured on the GPU, estimated
    python bench/memory.py model=llama-8b data.vocab_size=128256 data.block_size=8192 data.batch_size=1 \
        trainer=fsdp model.activation_checkpointing=full --world 8 --estimate-only   # the estimate alone
    python bench/memory.py model=llama-tiny trainer=cpu data.block_size=256 data.batch_size=8   # CPU

The arguments are `lmlab-train` overrides (model, trainer/strategy, precision, batch, context, activation
checkpointing); `--steps` real optimizer steps of the CLM objective run on random tokens through
lmlab's own module and a Lightning Trainer (one process: `trainer=fsdp` shards over a world of 1; the
estimate divides the sharded terms by `--world`). Measured: `torch.cuda.max_memory_allocated` on a GPU;
on a CPU the rise of the process's peak resident memory (VmHWM) over its size before the model was built.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

GIB = 1 << 30


@dataclass
class Estimate:
    """Bytes per device at the step's peak, term by term (see `estimate`)."""

    parameters: float
    gradients: float
    optimizer: float
    gathered: float
    activations: float
    logits: float
    step_temporaries: float

    @property
    def peak(self) -> float:
        # activations (and the logits) are freed as the backward makes gradients; the optimizer step's
        # temporaries come after the backward: whichever of the two phases is larger sets the peak
        during_backward = self.activations + self.logits + self.gradients / 2
        during_step = self.gradients + self.step_temporaries
        return self.parameters + self.optimizer + self.gathered + max(during_backward, during_step)


def estimate(config, params: int, block_params: int, vocab: int, batch: int, context: int, precision: str,
             checkpointing: str, every: int, world: int, sharded: bool, fused_optimizer: bool) -> Estimate:
    """Parameters, gradients and AdamW's two moments in the parameters' dtype (fp32 unless `*-true`), 1/world
    of each when sharded, plus two blocks gathered (the one computing and the one prefetched); activations
    per token and block counted from a Llama/GPT block's saved tensors (norm inputs and outputs, the q/k/v/o
    and MLP inputs, attention's q, k, v and output, the MLP's hidden activations), the logits and their
    log-softmax; a block that recomputes keeps only its input, plus one block's activations while it
    recomputes. A foreach AdamW step allocates one more fp32 copy of the moments' size."""
    param_bytes = 2 if precision in ("bf16-true", "16-true") else 4
    act_bytes = 4 if precision.startswith("32") else 2
    share = world if sharded else 1
    width = config.hidden_size
    inner = getattr(config, "intermediate_size", None) or 4 * width
    heads = config.num_attention_heads
    kv_width = width // heads * (getattr(config, "num_key_value_heads", None) or heads)
    layers = config.num_hidden_layers
    tokens = batch * context
    residual_bytes = 4 if precision.endswith("mixed") or precision.startswith("32") else act_bytes
    # two RMS/LayerNorms (input and output kept in the residual's dtype), q/k/v/o and MLP inputs, attention's
    # q, k, v, output, the MLP's hidden activations (up, gate, activation, product)
    per_token_block = residual_bytes * 4 * width + act_bytes * (4 * width + 2 * kv_width + 4 * inner)
    recompute = {"none": 0, "full": layers, "selective": len(range(0, layers, every))}[checkpointing]
    kept = (layers - recompute) * per_token_block + recompute * residual_bytes * width
    activations = tokens * (kept + (per_token_block if recompute else 0))
    logits = tokens * vocab * act_bytes * 2  # the logits and their log-softmax (then its gradient)
    return Estimate(
        parameters=params * param_bytes / share,
        gradients=params * param_bytes / share,
        optimizer=2 * params * param_bytes / share,
        gathered=2 * block_params * param_bytes * 2 if sharded and world > 1 else 0.0,  # parameters and gradients
        activations=activations,
        logits=logits,
        step_temporaries=0.0 if fused_optimizer else params * param_bytes / share,
    )


def resident_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def measure(cfg, steps: int) -> dict[str, float]:
    """Peak bytes of `steps` real training steps (CLM module, Lightning Trainer) on random tokens."""
    import lightning as L
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    class PeakMemory(L.Callback):
        def on_train_start(self, trainer, pl_module) -> None:
            if torch.cuda.is_available():
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            else:
                Path("/proc/self/clear_refs").write_text("5")  # the peak resident size starts again from now

        def on_train_end(self, trainer, pl_module) -> None:
            if torch.cuda.is_available():
                torch.cuda.synchronize()
                self.peak = torch.cuda.max_memory_allocated()
            else:
                self.peak = resident_bytes("VmHWM") - baseline

    baseline = 0 if torch.cuda.is_available() else resident_bytes("VmRSS")
    container = {key: OmegaConf.to_container(cfg[key], resolve=True) for key in ("model", "optimizer", "trainer")}
    module = instantiate(cfg.task.module, model=container["model"], optimizer=container["optimizer"],
                         scheduler=None, vocab_size=int(cfg.data.vocab_size), _recursive_=False, _convert_="all")
    batch, context = int(cfg.data.batch_size), int(cfg.data.block_size)
    tokens = torch.randint(0, int(cfg.data.vocab_size), ((steps + 1) * batch, context))
    loader = torch.utils.data.DataLoader([{"input_ids": row} for row in tokens], batch_size=batch)
    peak = PeakMemory()
    trainer_cfg = {k: v for k, v in container["trainer"].items()
                   if k not in ("default_root_dir", "max_steps", "val_check_interval", "check_val_every_n_epoch",
                                "limit_val_batches", "num_sanity_val_steps", "max_epochs", "limit_train_batches")}
    trainer = instantiate(trainer_cfg, callbacks=[peak], logger=False, enable_checkpointing=False,
                          enable_progress_bar=False, enable_model_summary=False, max_steps=steps,
                          limit_val_batches=0, num_sanity_val_steps=0, devices=1, default_root_dir="/tmp")
    trainer.fit(module, train_dataloaders=loader)
    return {"peak": float(peak.peak)}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=3, help="real optimizer steps measured")
    parser.add_argument("--world", type=int, default=None, help="devices the estimate shards over (default: "
                        "trainer.devices when a number, else 1)")
    parser.add_argument("--estimate-only", action="store_true", help="no training: the estimate alone")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args, overrides = parser.parse_known_args(argv)

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import instantiate
    from transformers import AutoModelForCausalLM

    from lmlab.config import config_dir, register_resolvers
    from lmlab.models.blocks import transformer_blocks
    from lmlab.models.vocab_padding import padded_vocab_size

    register_resolvers()
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)  # the run directory's name resolves as in lmlab-train
    model_config = instantiate(cfg.model.config)
    vocab = padded_vocab_size(int(cfg.data.vocab_size), cfg.model.get("pad_vocab_multiple"))
    model_config.vocab_size = vocab
    with torch.device("meta"):
        shapes = AutoModelForCausalLM.from_config(model_config)
    params = sum(p.numel() for p in shapes.parameters())
    block_params = max(sum(p.numel() for p in b.parameters()) for b in transformer_blocks(shapes))
    strategy = cfg.trainer.get("strategy")
    sharded = strategy is not None and "FSDPStrategy" in str(strategy.get("_target_"))
    devices = cfg.trainer.get("devices")
    world = args.world or (devices if isinstance(devices, int) else 1)
    precision = str(cfg.trainer.precision)
    checkpointing = cfg.model.get("activation_checkpointing") or "none"
    fused = bool(cfg.optimizer.get("fused")) or (cfg.optimizer.get("fused") is None and torch.cuda.is_available())
    figures = estimate(model_config, params, block_params, vocab, int(cfg.data.batch_size), int(cfg.data.block_size),
                       precision, checkpointing, int(cfg.model.get("activation_checkpointing_every") or 2), world,
                       sharded, fused)
    result = {"model": cfg.model.name, "parameters": params, "precision": precision, "sharded": sharded,
              "world": world, "batch": int(cfg.data.batch_size), "context": int(cfg.data.block_size),
              "activation_checkpointing": checkpointing, "estimate": {**asdict(figures), "peak": figures.peak},
              "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"}
    if not args.estimate_only:
        result["measured"] = measure(cfg, args.steps)
    print(f"{cfg.model.name}: {params / 1e6:.1f}M parameters, {precision}, batch {result['batch']} x "
          f"{result['context']} tokens, activation checkpointing {checkpointing}, "
          f"{'FSDP over ' + str(world) if sharded else 'unsharded'} ({result['device']})")
    for name, value in result["estimate"].items():
        print(f"  estimate {name:<17} {value / GIB:9.3f} GiB")
    if "measured" in result:
        measured = result["measured"]["peak"]
        print(f"  measured peak             {measured / GIB:9.3f} GiB  (estimate / measured = "
              f"{figures.peak / measured:.2f})")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
