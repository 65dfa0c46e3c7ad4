"""`lmlab-generate SOURCE [PROMPT ...] [key=value ...]`: complete prompts with a run's model, streamed to the console.

SOURCE (or `source=`) is an lmlab run directory (its `hf/` export, else `checkpoints/last.ckpt`), an lmlab
checkpoint, a Hugging Face model directory or a hub name. A model whose tokenizer has a chat template (every SFT
run's has) gets each prompt as a user message with the template applied (`chat=false`: the raw text). Greedy by
default; `sample=true` draws with `temperature`, `top_k`, `top_p` under `seed`. `out=FILE` also writes one JSON
line per prompt. Arguments are `key=value` as for `lmlab-train` and `lmlab-eval` (`lmlab-generate --help` lists
the keys); the old `--flags` still work, with a deprecation line.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

from lmlab.errors import LmlabError


@dataclass
class GenerateArgs:
    """What `lmlab-generate` was asked: one field per `key=value` (SOURCE and the prompts also by position)."""

    source: str = field(default="", metadata={"help": "run directory, checkpoint (.ckpt), HF directory or hub name"})
    prompt: list[str] = field(default_factory=list, metadata={"help": "a prompt (repeatable; or after SOURCE)"})
    file: Path | None = field(default=None, metadata={"help": "prompts, one per line (.jsonl: a 'prompt' field)"})
    max_new_tokens: int = field(default=64, metadata={"help": "tokens to generate per prompt"})
    sample: bool = field(default=False, metadata={"help": "sample instead of greedy decoding"})
    temperature: float = field(default=1.0, metadata={"help": "sampling temperature"})
    top_k: int | None = field(default=None, metadata={"help": "sample from the k most likely tokens"})
    top_p: float | None = field(default=None, metadata={"help": "sample from the top-p probability mass"})
    seed: int = field(default=0, metadata={"help": "sampling seed (each prompt starts from it)"})
    chat: bool | None = field(default=None, metadata={"help": "apply the chat template (null: if there is one)"})
    out: Path | None = field(default=None, metadata={"help": "write {prompt, completion, ...} JSON lines here"})
    device: str = field(default="auto", metadata={"help": "cpu, cuda, cuda:1 ... (auto: cuda if available)"})
    cache_dir: str | None = field(default=None, metadata={"help": "a run's tokenizer cache (null: the run's own)"})


def parse_args(argv: list[str] | None = None) -> GenerateArgs:
    from lmlab.utils.key_values import parse_key_values

    return parse_key_values(sys.argv[1:] if argv is None else argv, GenerateArgs, ("source", "prompt"),
                            "lmlab-generate", __doc__.split("\n\n")[0].split(": ", 1)[1])


def read_prompts(args: GenerateArgs) -> list[str]:
    prompts = list(args.prompt)
    if args.file:
        if not args.file.is_file():
            raise LmlabError(f"file={str(args.file)!r} does not exist")
        lines = [line for line in args.file.read_text().splitlines() if line.strip()]
        if args.file.suffix == ".jsonl":
            try:
                lines = [json.loads(line)["prompt"] for line in lines]
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise LmlabError(f"file={str(args.file)!r}: every line must be a JSON object with a 'prompt'") from e
        prompts += lines
    if not prompts:
        raise LmlabError("no prompts: give them after SOURCE, as prompt=TEXT or in file=PATH")
    return prompts


def check_sampling(args: GenerateArgs) -> None:
    if args.max_new_tokens <= 0:
        raise LmlabError(f"max_new_tokens={args.max_new_tokens} must be positive")
    if not math.isfinite(args.temperature) or args.temperature <= 0:
        raise LmlabError(f"temperature={args.temperature} must be a positive number (greedy is the default "
                         "without sample=true)")
    if args.top_p is not None and not (math.isfinite(args.top_p) and 0 < args.top_p <= 1):
        raise LmlabError(f"top_p={args.top_p} must be in (0, 1]")
    if args.top_k is not None and args.top_k <= 0:
        raise LmlabError(f"top_k={args.top_k} must be positive")


def check_length(model, max_new_tokens: int) -> None:
    """Refuse a generation longer than the model's positions (an IndexError on each step past them otherwise)."""
    from lmlab.models import context_length

    limit = context_length(model.config)
    if limit and max_new_tokens >= limit:
        raise LmlabError(f"max_new_tokens={max_new_tokens} leaves no room for the prompt in the model's "
                         f"{limit} positions: ask for fewer")


def pick_device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise LmlabError(f"device={name!r} is not a device (cpu, cuda, cuda:1, ...)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise LmlabError(f"device={name!r}: no CUDA device on this machine")
    return device


def run(args: GenerateArgs) -> list[dict]:
    prompts = read_prompts(args)
    check_sampling(args)
    if args.out and args.out.is_dir():
        raise LmlabError(f"out={str(args.out)!r} is a directory: name a file for the JSON lines")
    device = pick_device(args.device)
    from lmlab.checkpoint.hf_model import load_model

    model, tokenizer = load_model(args.source, args.cache_dir)
    check_length(model, args.max_new_tokens)

    import torch
    from transformers import TextStreamer

    from lmlab.models.generation import Sampling, generate

    model.to(device)
    chat = bool(tokenizer.chat_template) if args.chat is None else args.chat
    if chat and not tokenizer.chat_template:
        raise LmlabError(f"chat=true: the tokenizer of {args.source!r} has no chat template")
    sampling = Sampling(max_new_tokens=args.max_new_tokens, do_sample=args.sample, temperature=args.temperature,
                        top_k=args.top_k, top_p=args.top_p)
    records = []
    for prompt in prompts:
        torch.manual_seed(args.seed)
        print(f">>> {prompt}", flush=True)
        streamer = TextStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
        completion = generate(model, tokenizer, [prompt], sampling, chat=chat, streamer=streamer)[0]
        records.append({"prompt": prompt, "completion": completion, "source": args.source, "chat": chat,
                        **vars(sampling), "seed": args.seed})
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("".join(json.dumps(r) + "\n" for r in records))
    return records


def main(argv: list[str] | None = None) -> None:
    try:
        args = parse_args(argv)
        if not args.source:
            raise LmlabError("no model: give a run directory, checkpoint or model first (lmlab-generate SOURCE ...)")
        run(args)
    except LmlabError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
