"""`key=value` arguments into a dataclass, for the commands that are not Hydra apps (`lmlab-generate`,
`lmlab-consolidate`): the argument style of `lmlab-train` and `lmlab-eval`, with the usual arguments also by
position. Old `--flag value` arguments still work, with one deprecation line naming the new spelling."""

from __future__ import annotations

import dataclasses
import re
import sys
import types
import typing
from typing import Any, TypeVar

from lmlab.errors import LmlabError

T = TypeVar("T")
KEY = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", re.DOTALL)
TRUE, FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off")


def parse_key_values(argv: list[str], spec: type[T], positional: tuple[str, ...], prog: str, about: str) -> T:
    """`spec` filled from `argv`: `key=value` items, then positional ones for the fields named in `positional`
    in order (a list field last takes the rest). Everything after `--` is positional. `-h`/`--help` prints the
    keys and exits 0; an unknown key or a bad value raises `LmlabError` naming it."""
    types_ = typing.get_type_hints(spec)
    fields = {f.name: f for f in dataclasses.fields(spec)}
    argv = _translate_flags(argv, fields, types_, prog)
    values: dict[str, Any] = {}
    free: list[str] = []
    for i, arg in enumerate(argv):
        if arg == "--":
            free += argv[i + 1:]
            break
        if arg in ("-h", "--help"):
            print(help_text(spec, positional, prog, about))
            sys.exit(0)
        match = KEY.match(arg)
        if match is None:
            free.append(arg)
            continue
        key, value = match.groups()
        if key not in fields:
            raise LmlabError(f"unknown key {key!r} (keys: {', '.join(fields)}); a positional argument that holds "
                             "'=' goes after --")
        converted = _convert(key, value, types_[key])
        values[key] = [*values.get(key, []), *converted] if isinstance(converted, list) else converted
    for name in positional:
        if not free:
            break
        if _is_list(types_[name]):
            values[name], free = [*values.get(name, []), *free], []
        elif name not in values:
            values[name] = free.pop(0)
    if free:
        raise LmlabError(f"unexpected argument {free[0]!r}: give key=value (see {prog} --help)")
    return spec(**values)


def help_text(spec: type, positional: tuple[str, ...], prog: str, about: str) -> str:
    """`prog`'s usage and one line per key (its default and the field's `help`)."""
    names = " ".join(f"[{name.upper()} ...]" if _is_list(typing.get_type_hints(spec)[name]) else name.upper()
                     for name in positional)
    lines = [f"usage: {prog} {names} [key=value ...]", "", about, "", "keys:"]
    for f in dataclasses.fields(spec):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        shown = "null" if default is None else str(default).lower() if isinstance(default, bool) else str(default)
        lines.append(f"  {f.name + '=' + shown:<22} {f.metadata.get('help', '')}")
    return "\n".join(lines)


def _translate_flags(argv: list[str], fields: dict, types_: dict, prog: str) -> list[str]:
    """Old `--max-new-tokens 8`, `--sample`, `--no-chat` as `max_new_tokens=8`, `sample=true`, `chat=false`."""
    out, old, new = [], [], []
    args = iter(argv)
    for arg in args:
        name, eq, value = arg[2:].partition("=")
        key = name.replace("-", "_")
        negated = key.startswith("no_") and key[3:] in fields and _is_bool(types_[key[3:]])
        if not arg.startswith("--") or arg == "--help" or not (key in fields or negated):
            out.append(arg)
            if arg == "--":
                out += list(args)
            continue
        if negated:
            item = f"{key[3:]}=false"
        elif _is_bool(types_[key]) and not eq:
            item = f"{key}=true"
        else:
            value = value if eq else next(args, "")
            arg = arg if eq else f"{arg} {value}"
            item = f"{key}={value}"
        old.append(arg)
        new.append(item)
        out.append(item)
    if old:
        print(f"{prog}: {' '.join(old)}: --flags are deprecated, write {' '.join(new)}", file=sys.stderr)
    return out


def _convert(key: str, value: str, kind: Any) -> Any:
    optional = type(None) in typing.get_args(kind)
    if optional and value.lower() in ("null", "none", ""):
        return None
    base = next((a for a in typing.get_args(kind) if a is not type(None)), kind) if optional else kind
    if _is_list(base):
        return [value]
    try:
        if base is bool:
            if value.lower() not in (*TRUE, *FALSE):
                raise ValueError
            return value.lower() in TRUE
        if base is int:
            return int(value)
        return float(value) if base is float else base(value)
    except ValueError:
        kind = {bool: "true or false", int: "an integer", float: "a number"}.get(base, f"a {base.__name__}")
        raise LmlabError(f"{key}={value!r} is not {kind}") from None


def _is_list(kind: Any) -> bool:
    return typing.get_origin(kind) is list


def _is_bool(kind: Any) -> bool:
    return kind is bool or (isinstance(kind, types.UnionType) and bool in typing.get_args(kind))

