"""The coordinate check of μP (Tensor Programs V, fig. 5): mean |activation| of the embeddings, each block's
attention and MLP outputs and the logits after a few AdamW steps, at widths 64 … 1024, μP beside standard
parametrisation, averaged over seeds. Flat lines under μP; under SP the activations grow with width. GPT-2 is
bias-free (model.bias=false, as nanoGPT-mup's) unless --bias: its biases, at the unscaled learning rate μP gives
them, make the second block's attention output grow (docs/scaling.md).

    python bench/mup_coord_check.py                 # GPT-2 and Llama, widths 64-1024: docs/mup_coord_check.png
    python bench/mup_coord_check.py --widths 64 128 256 512 --seeds 1 --out /tmp/check.png
    python bench/mup_coord_check.py --optimizer muon --widths 64 128 256 512 --out /tmp/muon.png  # optimizer=muon
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from lmlab.optim.coord_check import coordinate_check

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[64, 128, 256, 512, 1024])
    parser.add_argument("--families", nargs="+", default=["gpt2", "llama"], choices=["gpt2", "llama"])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--bias", action="store_true", help="GPT-2 with its biases")
    parser.add_argument("--optimizer", default="adamw", choices=["adamw", "muon"],
                        help="muon: optimizer=muon (lmlab.optim.muon) and its μP rule")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "mup_coord_check.png")
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(args.families), 2, figsize=(11, 4 * len(args.families)), squeeze=False)
    for row, family in zip(axes, args.families, strict=True):
        for ax, mup in zip(row, (False, True), strict=True):
            runs = [coordinate_check(family, args.widths, mup, base_width=args.widths[0], steps=args.steps,
                                     lr=args.lr, seed=seed, bias=args.bias, optimizer=args.optimizer)
                    for seed in range(args.seeds)]
            for name in runs[0][args.widths[0]]:
                means = [np.mean([run[w][name] for run in runs]) for w in args.widths]
                ax.plot(args.widths, means, marker="o", label=name, linewidth=2.5 if name == "logits" else 1)
                print(f"{family} {'μP' if mup else 'SP'} {name}: " + " ".join(f"{v:.4g}" for v in means)
                      + f"  ({means[-1] / means[0]:.2f}x)")
            title = f"{family}, {'μP' if mup else 'standard'}: {args.steps} {args.optimizer} steps at lr {args.lr:g}"
            ax.set(xscale="log", yscale="log", xlabel="width", ylabel="mean |activation|", title=title)
            ax.set_xticks(args.widths, [str(w) for w in args.widths])
            ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    print(f"Wrote {args.out}")


if __name__ == "__main__":
    main()
