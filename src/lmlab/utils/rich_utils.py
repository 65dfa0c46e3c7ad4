"""Print the composed config as a rich tree (the groups first, in the order users think of them)."""

from __future__ import annotations

import rich
import rich.syntax
import rich.tree
from omegaconf import DictConfig, OmegaConf

from lmlab.utils.redact import redact

ORDER = ("task", "model", "data", "optimizer", "scheduler", "trainer", "callbacks", "logger", "paths")


def print_config_tree(cfg: DictConfig, resolve: bool = True) -> None:
    """Print `cfg` as a tree, with secret values masked like in config.yaml."""
    tree = rich.tree.Tree("config", style="dim", guide_style="dim")
    plain = redact(OmegaConf.to_container(cfg, resolve=resolve))
    keys = [k for k in ORDER if k in plain] + [k for k in plain if k not in ORDER]
    for key in keys:
        branch = tree.add(str(key), style="bold", guide_style="dim")
        node = plain[key]
        text = OmegaConf.to_yaml(OmegaConf.create(node)) if isinstance(node, dict | list) else str(node)
        branch.add(rich.syntax.Syntax(text.rstrip(), "yaml", theme="ansi_dark", background_color="default"))
    rich.print(tree)
