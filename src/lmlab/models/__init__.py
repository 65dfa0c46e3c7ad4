"""The model: built from a `model` config (`build`), its vocabulary padding, attention declaration for
`torch.compile`, LoRA adapters, `init_from` a finished run, and text generation."""

from lmlab.models.build import build_model, context_length, flops_per_token, fuse_activations, load_pretrained

__all__ = ["build_model", "context_length", "flops_per_token", "fuse_activations", "load_pretrained"]
