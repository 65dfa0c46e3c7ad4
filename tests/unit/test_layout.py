"""The package's layout (docs/design.md): lmlab.checkpoint owns checkpoints (the hooks that touch one live there,
sharded ones are read through torch's public conversion), no lmlab module imports itself back through a circle,
and the launch keeps its state in objects, not in module globals."""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "lmlab"
HOOKS = re.compile(r"save_checkpoint|load_checkpoint|on_save_checkpoint|on_load_checkpoint")


def test_checkpoint_hooks_live_in_the_checkpoint_package():
    outside = sorted(str(p.relative_to(SRC)) for p in SRC.rglob("*.py")
                     if "checkpoint" not in p.relative_to(SRC).parts[:1] and HOOKS.search(p.read_text()))
    assert len(outside) <= 5, outside


def test_the_launch_holds_no_module_level_mutable_state():
    """runs/ and its successors (tracking/, sweeps/): no `global`, and module-level names are constants (UPPER
    case), the module's logger or type aliases; a launch's lock, held-back log and flags live in `Launch`."""
    found = []
    for package in ("runs", "tracking", "sweeps"):
        for path in sorted((SRC / package).glob("*.py")):
            tree = ast.parse(path.read_text())
            found += [f"{path.name}:{node.lineno} global" for node in ast.walk(tree) if isinstance(node, ast.Global)]
            for node in tree.body:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target] \
                    if isinstance(node, ast.AnnAssign) else []
                names = [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]  # tuples too
                for name in names:
                    if not (name.isupper() or name in ("log", "__all__") or name[:1].isupper()):
                        found.append(f"{path.name}:{node.lineno} {name}")
    assert not found, found


def test_no_import_circle_among_lmlab_modules():
    import grimp

    graph = grimp.build_graph("lmlab")
    edges = {m: {i for i in graph.find_modules_directly_imported_by(m) if i.startswith("lmlab.")}
             for m in graph.modules if m.startswith("lmlab.")}
    circles = [c for c in _strongly_connected(edges) if len(c) > 1]
    assert not circles, circles


def _strongly_connected(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's components of the import graph (a component of more than one module is a circle)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_a_sharded_checkpoint_reads_back_through_torchs_public_conversion(tmp_path):
    import torch
    import torch.distributed.checkpoint as dcp

    from lmlab.checkpoint.sharded import METADATA_FILE, load_sharded_checkpoint

    state = {"state_dict": {"w": torch.arange(6.0).reshape(2, 3)}, "optimizer_0": {"step": 3}}
    dcp.save(state, checkpoint_id=tmp_path, no_dist=True)
    torch.save({"global_step": 7}, tmp_path / METADATA_FILE)
    loaded = load_sharded_checkpoint(tmp_path)
    assert torch.equal(loaded["state_dict"]["w"], state["state_dict"]["w"])
    assert loaded["optimizer_states"] == [{"step": 3}] and loaded["global_step"] == 7


def test_every_file_and_name_docs_design_md_points_at_exists():
    """docs/design.md's pipeline and ownership tables name files (`runs/run.py`) and what they hold
    (`runs/run.py:Run`): each file exists, and each name is defined in it."""
    root = SRC.parents[1]
    text = (root / "docs" / "design.md").read_text()
    run_dir_names = {"hf/", "hf-adapter/"}  # a run directory's, not the code's
    missing = []
    for path, name in set(re.findall(r"`([A-Za-z0-9_./-]+(?:\.py|\.yaml|\.toml|/))(?::([A-Za-z_][A-Za-z0-9_.]*))?`",
                                     text)):
        if path in run_dir_names:
            continue
        candidates = [root / path, SRC / path, root / "src" / path, root / "tests" / path]
        found = next((c for c in candidates if c.exists()), None)
        if found is None and "/" not in path:  # a file named in its folder's row (`scaling/`: `law.py`, ...)
            found = next(iter([*SRC.rglob(path), *(root / "tests").rglob(path)]), None)
        if found is None:
            missing.append(path)
        elif name and found.is_file():
            symbol = name.split(".")[0]
            if not re.search(rf"^\s*(?:def|class)\s+{symbol}\b|^{symbol}\s*[:=]", found.read_text(), re.M):
                missing.append(f"{path}:{name}")
    assert not missing, sorted(missing)
