"""The figures of one `bench/gpu_job.sh` call in one file, and lmlab's GPT-2 124M result beside nanoGPT's
from the same job (`"nanogpt": {"tokens_per_sec": …}`), so the ratio can be re-read later.

    python bench/gpu_results.py /tmp/lmlab-gpu-job --json results.json --gpt2-json bench/results/h200-gpt2-124m.json
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from pathlib import Path

NANOGPT_TOKENS_PER_STEP = 16 * 1024  # bench.py --batch_size=16, its block_size 1024
NANOGPT_COMMAND = "python bench.py --real_data=False --compile=True --batch_size=16"


def read_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def lmlab_tokens_per_sec(throughput: dict | None) -> float | None:
    runs = (throughput or {}).get("results", {}).get("lmlab") or []
    return statistics.median(r["tokens_per_sec"] for r in runs) if runs else None


def nanogpt_result(log: Path) -> dict | None:
    """nanoGPT's benchmark line: `time per iteration: 34.2947ms, MFU: 37.65%` (MFU for an A100's peak)."""
    found = re.findall(r"time per iteration: ([\d.]+)ms", log.read_text()) if log.is_file() else []
    if not found:
        return None
    ms = float(found[-1])
    return {"tokens_per_sec": NANOGPT_TOKENS_PER_STEP / (ms / 1000), "ms_per_step": ms, "command": NANOGPT_COMMAND}


def collect(job: Path) -> tuple[dict, dict | None]:
    gpt2 = read_json(job / "gpt2.json")
    nanogpt = nanogpt_result(job / "nanogpt.log")
    lmlab = lmlab_tokens_per_sec(gpt2)
    results = {
        "gpt2_124m": {"lmlab_tokens_per_sec": lmlab, "nanogpt": nanogpt,
                      "lmlab_vs_nanogpt": lmlab / nanogpt["tokens_per_sec"] if lmlab and nanogpt else None},
        "llama_124m_tokens_per_sec": lmlab_tokens_per_sec(read_json(job / "llama.json")),
        "startup": {path.stem.removeprefix("startup-"): {k: v for k, v in read_json(path).items()
                                                         if k in ("time_to_first_step_s", "compile")}
                    for path in sorted(job.glob("startup-*.json"))},
        "fp8": read_json(job / "fp8.json"),
        "candidates": {" ".join(c["spec"].get("set", [])): lmlab_tokens_per_sec(c)
                       for c in map(read_json, sorted(job.glob("candidate-*.json"))) if c},
        "step_profile": read_json(job / "step_profile.json"),
        "docmask": {path.stem: read_json(path) for path in sorted(job.glob("docmask-*.json"))},
    }
    if gpt2 is not None and nanogpt is not None:
        gpt2 = {**gpt2, "nanogpt": nanogpt, "lmlab_vs_nanogpt": results["gpt2_124m"]["lmlab_vs_nanogpt"]}
    return results, gpt2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("job", type=Path, help="the job's folder of logs and JSON")
    parser.add_argument("--json", type=Path, required=True, help="every figure of the job")
    parser.add_argument("--gpt2-json", type=Path, help="GPT-2 124M's throughput JSON with nanoGPT's figure added")
    args = parser.parse_args()
    results, gpt2 = collect(args.job)
    args.json.write_text(json.dumps(results, indent=2))
    print(json.dumps({k: v for k, v in results.items() if k != "step_profile"}, indent=2))
    if args.gpt2_json and gpt2 is not None:
        args.gpt2_json.parent.mkdir(parents=True, exist_ok=True)
        args.gpt2_json.write_text(json.dumps(gpt2, indent=2))


if __name__ == "__main__":
    main()
