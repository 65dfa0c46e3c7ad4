"""The model: built from a `model` config (`build`), its vocabulary padding, attention declaration for
`torch.compile`, LoRA adapters, and text generation.

`build`'s names load on first use, so importing `lmlab.models` stays light on error paths.
"""

__all__ = ["build_model", "context_length", "flops_per_token", "fuse_activations", "load_pretrained"]


def __getattr__(name: str):
    if name in __all__:
        from lmlab.models import build

        return getattr(build, name)
    raise AttributeError(f"module 'lmlab.models' has no attribute {name!r}")
