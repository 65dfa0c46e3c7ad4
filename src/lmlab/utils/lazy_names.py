"""A package's public names imported on first use (PEP 562), so that its light modules (config checks, data
sources) can be imported before training without pulling in torch or Lightning through the package."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module


def lazy_names(package: str, modules: dict[str, str]) -> Callable[[str], object]:
    """The package's `__getattr__`: `modules` maps each public name to the submodule that defines it."""

    def __getattr__(name: str) -> object:
        if name not in modules:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(f"{package}.{modules[name]}"), name)

    return __getattr__
