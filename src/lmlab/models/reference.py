"""`FrozenReference`: the policy as training starts, frozen, for preference objectives (DPO's π_ref).

It is rebuilt by the task module's constructor from what the policy starts from (`model.init_from`,
`model.pretrained` or the seeded initialisation), never from a resumed policy, so it is left out of checkpoints:
they stay the policy's size, and a resumed run compares with exactly the reference of an uninterrupted one.
Under `peft` no copy is made at all: the policy with its adapters disabled is the reference
(`reference_logits`). With precomputed log-probabilities (`lmlab.modules.reference_logps`) there is no copy
either: the starting policy scores every pair once, and `weights_fingerprint` keys what it computed.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib

import torch

from lmlab.models.lora import is_peft


def _drop_saved(module: torch.nn.Module, state_dict: dict, prefix: str, local_metadata: dict) -> None:
    for key in [k for k in state_dict if k.startswith(prefix)]:
        del state_dict[key]


def _keep_built(module: FrozenReference, state_dict: dict, prefix: str, *args) -> None:
    # the wrapped model's own state_dict: the wrapper's would drop every key (`_drop_saved`)
    for name, tensor in module.model.state_dict(prefix=f"{prefix}model.", keep_vars=True).items():
        state_dict.setdefault(name, tensor)


class FrozenReference(torch.nn.Module):
    """A frozen copy of `policy`, always in eval mode (no dropout), absent from `state_dict()`."""

    def __init__(self, policy: torch.nn.Module):
        super().__init__()
        self.model = copy.deepcopy(policy).requires_grad_(False).eval()
        self.register_load_state_dict_pre_hook(_keep_built)
        self.register_state_dict_post_hook(_drop_saved)

    def train(self, mode: bool = True) -> FrozenReference:
        return super().train(False)

    def forward(self, **inputs) -> torch.Tensor:
        return self.model(**inputs).logits


def reference_logits(policy: torch.nn.Module, reference: FrozenReference | None, **inputs) -> torch.Tensor:
    """The reference's logits for `inputs`, without gradients: the frozen copy's, or (peft) the policy's with its
    adapters disabled."""
    disabled = policy.disable_adapter() if reference is None and is_peft(policy) else contextlib.nullcontext()
    with torch.no_grad(), disabled:
        return (reference(**inputs) if reference is not None else policy(**inputs).logits).detach()


def disable_dropout(model: torch.nn.Module) -> None:
    """Every dropout of `model` off (TRL's default for preference training): a response's log-probability, or
    its reward, is then one number, and the policy's equals the reference's at the first step."""
    for layer in model.modules():
        if isinstance(layer, torch.nn.Dropout):
            layer.p = 0.0


def weights_fingerprint(model: torch.nn.Module) -> str:
    """A hash of every tensor of `model`'s state (names, dtypes, shapes and bytes): which reference it is."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:20]
