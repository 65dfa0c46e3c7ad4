"""`lmlab-generate` takes `key=value` like lmlab-train and lmlab-eval; the old `--flags` still work, with one line."""

from __future__ import annotations

import pytest
from conftest import run_cli

from lmlab.errors import LmlabError
from lmlab.generate import GenerateArgs, parse_args


def test_key_values_and_positionals_fill_the_arguments():
    args = parse_args(["outputs/clm/default", "def ", "import", "max_new_tokens=8", "sample=true", "top_p=0.9",
                       "chat=false", "out=a.jsonl", "prompt=x = 1"])
    assert args.source == "outputs/clm/default" and args.prompt == ["x = 1", "def ", "import"]
    assert (args.max_new_tokens, args.sample, args.top_p, args.chat, str(args.out)) == (8, True, 0.9, False, "a.jsonl")
    assert parse_args(["source=gpt2", "top_k=null", "--", "a=b"]) == GenerateArgs(source="gpt2", prompt=["a=b"])


def test_the_old_flags_mean_the_same_and_say_how_to_write_them(capsys):
    old = parse_args(["gpt2", "hi", "--max-new-tokens", "8", "--sample", "--no-chat", "--top-k=5"])
    assert old == parse_args(["gpt2", "hi", "max_new_tokens=8", "sample=true", "chat=false", "top_k=5"])
    [line] = capsys.readouterr().err.splitlines()
    assert "deprecated" in line and "max_new_tokens=8 sample=true chat=false top_k=5" in line


@pytest.mark.parametrize(("argv", "message"), [
    (["gpt2", "hi", "max_new_tokens=many"], "max_new_tokens='many' is not an integer"),
    (["gpt2", "hi", "sample=maybe"], "sample='maybe' is not true or false"),
    (["gpt2", "hi", "temprature=2"], "unknown key 'temprature'"),
])
def test_a_bad_argument_names_its_key(argv, message):
    with pytest.raises(LmlabError, match=message):
        parse_args(argv)


def test_help_lists_every_key(tmp_path):
    result = run_cli(["--help"], tmp_path, module="lmlab.generate")
    assert result.returncode == 0 and result.stdout.startswith("usage: lmlab-generate SOURCE")
    for key in GenerateArgs.__dataclass_fields__:
        assert f"\n  {key}=" in result.stdout
