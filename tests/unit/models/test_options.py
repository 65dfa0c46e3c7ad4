"""The library options lmlab's config checks list without importing the library (the error path stays light): each
list equals what the installed library accepts, so an upgrade that adds or drops one fails here, not for a user."""

from __future__ import annotations

import typing


def test_compile_modes_are_torch_compiles():
    import torch

    from lmlab.models.options import COMPILE_MODES

    assert set(COMPILE_MODES) == {None, *torch._inductor.list_mode_options()}


def test_fp8_recipes_are_torchaos():
    from torchao.float8 import Float8LinearRecipeName

    from lmlab.models.options import FP8_RECIPES

    assert set(FP8_RECIPES) == {recipe.value for recipe in Float8LinearRecipeName}


def test_precisions_are_lightnings():
    from lightning.fabric import connector

    from lmlab.runs.validate import PRECISIONS

    literals = typing.get_args(connector._PRECISION_INPUT)  # Literal[64, 32, 16], Literal['16-mixed', ...], ...
    accepted = {str(value) for literal in literals for value in typing.get_args(literal)}
    assert set(PRECISIONS) == accepted


def test_activations_are_transformers():
    from transformers.activations import ACT2CLS

    from lmlab.models.options import ACTIVATIONS

    assert set(ACTIVATIONS) == set(ACT2CLS)
