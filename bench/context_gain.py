"""How much a trained language model gains from its context: its loss at each position of a block, averaged over
blocks of Python's own `email` package (the embedded corpus's kind of text), from the run's hf/ export. A model
that copies what its context already showed (induction heads, Olsson et al. 2022) loses less late in a block
than early; docs/scaling.md uses it to explain why the CPU IsoFLOP ladder's frontier steepens.

    python bench/context_gain.py outputs/isoflop_ladder/multirun/ladder/{1,5,9}   # a run of each budget
"""

from __future__ import annotations

import argparse
import sysconfig
from pathlib import Path

import torch


def position_losses(run_dir: Path, text: str, blocks: int) -> torch.Tensor:
    """Mean next-token loss at each position of `blocks` consecutive blocks of the run's block size."""
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(run_dir / "hf" / "tokenizer.json"))
    model = AutoModelForCausalLM.from_pretrained(run_dir / "hf").eval()
    size = model.config.n_positions
    ids = tokenizer(text)["input_ids"][: blocks * size]
    x = torch.tensor(ids[: len(ids) // size * size]).view(-1, size)
    with torch.no_grad():
        logits = model(x).logits[:, :-1]
    loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), x[:, 1:], reduction="none")
    return loss.mean(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run directories with an hf/ export")
    parser.add_argument("--blocks", type=int, default=400)
    args = parser.parse_args()
    torch.set_num_threads(1)
    files = sorted(Path(sysconfig.get_paths()["stdlib"], "email").glob("*.py"))[:20]
    text = "".join(f.read_text() for f in files)
    print(f"{'run':48} {'mean':>6} {'pos 2-7':>8} {'pos 45-54':>10} {'gain':>7}")
    for run in args.runs:
        per = position_losses(run, text, args.blocks)
        early, late = per[2:8].mean().item(), per[45:55].mean().item()
        print(f"{str(run)[-48:]:48} {per.mean().item():6.3f} {early:8.3f} {late:10.3f} {late - early:+7.3f}")


if __name__ == "__main__":
    main()
