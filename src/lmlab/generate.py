"""`lmlab-generate SOURCE [PROMPT ...]`: complete prompts with a run's model, streamed to the console.

SOURCE is an lmlab run directory (its `hf/` export, else `checkpoints/last.ckpt`), an lmlab checkpoint,
a Hugging Face model directory or a hub name. A model whose tokenizer has a chat template (every SFT
run's has) gets each prompt as a user message with the template applied (`--no-chat`: the raw text).
Greedy by default; `--sample` draws with --temperature/--top-k/--top-p under --seed. `--out FILE` also
writes one JSON line per prompt.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lmlab.errors import LmlabError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="lmlab-generate", description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="run directory, checkpoint (.ckpt), Hugging Face directory or hub name")
    parser.add_argument("prompts", nargs="*", help="prompts (or use --file)")
    parser.add_argument("--file", type=Path, help="a file of prompts, one per line (.jsonl: a 'prompt' field)")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--sample", action="store_true", help="sample instead of greedy decoding")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top-k", type=int, default=None)
    parser.add_argument("--top-p", type=float, default=None)
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (each prompt starts from it)")
    parser.add_argument("--chat", action=argparse.BooleanOptionalAction, default=None,
                        help="apply the chat template (default: when the tokenizer has one)")
    parser.add_argument("--out", type=Path, help="write {prompt, completion, ...} JSON lines here")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    parser.add_argument("--cache-dir", default=None, help="where a run's tokenizer is cached (default: the run's own)")
    return parser.parse_args(argv)


def read_prompts(args: argparse.Namespace) -> list[str]:
    prompts = list(args.prompts)
    if args.file:
        if not args.file.is_file():
            raise LmlabError(f"--file={str(args.file)!r} does not exist")
        lines = [line for line in args.file.read_text().splitlines() if line.strip()]
        if args.file.suffix == ".jsonl":
            try:
                lines = [json.loads(line)["prompt"] for line in lines]
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise LmlabError(f"--file={str(args.file)!r}: every line must be a JSON object with a 'prompt'") from e
        prompts += lines
    if not prompts:
        raise LmlabError("no prompts: give them after SOURCE or with --file")
    return prompts


def check_sampling(args: argparse.Namespace) -> None:
    if args.max_new_tokens <= 0:
        raise LmlabError(f"--max-new-tokens={args.max_new_tokens} must be positive")
    if args.temperature <= 0:
        raise LmlabError(f"--temperature={args.temperature} must be positive (greedy is the default without --sample)")
    if args.top_p is not None and not 0 < args.top_p <= 1:
        raise LmlabError(f"--top-p={args.top_p} must be in (0, 1]")
    if args.top_k is not None and args.top_k <= 0:
        raise LmlabError(f"--top-k={args.top_k} must be positive")


def load_model(source: str, cache_dir: str | None):
    """(model in eval mode, tokenizer) from a run directory, checkpoint, HF directory or hub name."""
    from lmlab.models.checkpoint_model import checkpoint_model
    from lmlab.models.locate import locate_model

    found = locate_model(source, "source")
    return checkpoint_model(found, cache_dir) if isinstance(found, Path) else load_hf(found)


def load_hf(name_or_path: str):
    from transformers import AutoModelForCausalLM

    from lmlab.data.tokenizer import load_pretrained_tokenizer
    from lmlab.models import load_pretrained

    return load_pretrained(AutoModelForCausalLM, name_or_path).eval(), load_pretrained_tokenizer(name_or_path)


def run(args: argparse.Namespace) -> list[dict]:
    import torch
    from transformers import TextStreamer

    from lmlab.models.generation import Sampling, generate

    prompts = read_prompts(args)
    check_sampling(args)
    model, tokenizer = load_model(args.source, args.cache_dir)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    model.to(device)
    chat = bool(tokenizer.chat_template) if args.chat is None else args.chat
    if chat and not tokenizer.chat_template:
        raise LmlabError(f"--chat: the tokenizer of {args.source!r} has no chat template")
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
    args = parse_args(argv)
    try:
        run(args)
    except LmlabError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
