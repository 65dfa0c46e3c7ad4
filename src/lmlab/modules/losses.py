"""Next-token cross-entropy: on the logits as they come (bf16 under autocast), or fused with the output
projection, chunked over tokens (Liger-style).

Hugging Face's causal-LM loss casts the whole (tokens × vocab) logits to fp32 before its cross-entropy
(gigabytes for a GPT-2 batch, and milliseconds of a GPU step: docs/performance.md), and autocast upcasts
the input of `F.cross_entropy` too (seen on CPU: a `_to_copy` to fp32 first). `next_token_cross_entropy`
runs it outside autocast on the logits' own dtype: the log-softmax kernels accumulate in fp32 internally
for bf16 inputs, the per-token losses come back in bf16 and are averaged in fp32.

Fused:

`model(input_ids, labels=...)` materialises the full (tokens × vocab) logits, its log-softmax and their
gradients: ~270 MB each for 32×256 tokens and an 8k vocabulary, allocated and freed every step. Here
each chunk of tokens is projected, reduced to its loss and, when a gradient is needed, turned straight
into the gradients of the hidden states and of the projection weight, so only a chunk of logits ever
exists. Same FLOPs as the unfused loss (the gradients are computed in the forward, not recomputed).
"""

from __future__ import annotations

import torch

from lmlab.contracts import IGNORE_INDEX

CHUNK_TOKENS = 1024


def next_token_cross_entropy(logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of `logits` (batch, time, vocab) predicting `input_ids` shifted by one, in fp32.

    The targets are shifted rather than the logits (as Hugging Face's loss does it), so the logits are
    never copied: the last position's target is IGNORE_INDEX.
    """
    targets = torch.nn.functional.pad(input_ids[:, 1:], (0, 1), value=IGNORE_INDEX)
    with torch.autocast(logits.device.type, enabled=False):
        losses = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(),
                                                   ignore_index=IGNORE_INDEX, reduction="none")
    return losses.float().sum() / (targets != IGNORE_INDEX).sum()


def linear_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                         chunk_size: int = CHUNK_TOKENS) -> torch.Tensor:
    """Mean cross-entropy of `hidden @ weight.T` against `targets` (IGNORE_INDEX entries left out).

    hidden: (..., width); weight: (vocab, width), a bias-free output projection; targets: (...).
    """
    # Autograd marks the inputs as needing gradients even under no_grad: tell it (validation) apart here.
    backward_follows = torch.is_grad_enabled()
    return _LinearCrossEntropy.apply(hidden.reshape(-1, hidden.shape[-1]), weight, targets.reshape(-1), chunk_size,
                                     backward_follows)


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, chunk_size: int,
                backward_follows: bool):
        want_hidden, want_weight = (backward_follows and needed for needed in ctx.needs_input_grad[:2])
        ctx.weight_dtype = weight.dtype
        accumulate = torch.promote_types(hidden.dtype, torch.float32)  # float32, or float64 in gradcheck
        grad_hidden = torch.empty_like(hidden) if want_hidden else None
        grad_weight = torch.zeros_like(weight, dtype=accumulate) if want_weight else None
        keep = targets != IGNORE_INDEX
        count = keep.sum().clamp_min(1)
        total = torch.zeros((), dtype=accumulate, device=hidden.device)
        for start in range(0, hidden.shape[0], chunk_size):
            h, kept = hidden[start:start + chunk_size], keep[start:start + chunk_size]
            target = targets[start:start + chunk_size].masked_fill(~kept, 0)
            logits = (h @ weight.T).to(accumulate)
            logsumexp = logits.logsumexp(-1)
            total += ((logsumexp - logits.gather(1, target[:, None]).squeeze(1)) * kept).sum()
            if not (want_hidden or want_weight):
                continue
            # d(mean loss)/d(logits) = (softmax - one_hot(target)) / count, built in place of the logits
            grad = logits.sub_(logsumexp[:, None]).exp_()
            grad[torch.arange(len(target), device=grad.device), target] -= 1
            grad = (grad * (kept.to(accumulate) / count)[:, None]).to(h.dtype)
            if want_hidden:
                grad_hidden[start:start + chunk_size] = grad @ weight
            if want_weight:
                grad_weight += grad.T @ h
        ctx.save_for_backward(grad_hidden, grad_weight)
        return total / count

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        grad_hidden, grad_weight = ctx.saved_tensors
        if grad_hidden is not None:
            grad_hidden = grad_hidden * grad_output.to(grad_hidden.dtype)
        if grad_weight is not None:
            grad_weight = (grad_weight * grad_output).to(ctx.weight_dtype)
        return grad_hidden, grad_weight, None, None, None
