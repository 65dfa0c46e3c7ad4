"""`CausalLMModule`: next-token prediction on packed blocks."""

from __future__ import annotations

import torch
from torchmetrics import MeanMetric, SumMetric
from transformers import AutoModelForCausalLM

from lmlab.models.causal_attention import declare_plain_causal
from lmlab.models.compile import compile_blocks
from lmlab.models.document_attention import use_document_attention
from lmlab.modules.base import HFModelModule
from lmlab.modules.bits_per_byte import bits_per_byte, token_byte_lengths
from lmlab.modules.losses import linear_cross_entropy, next_token_cross_entropy
from lmlab.modules.step_loss import StepLoss, log_step_loss


class CausalLMModule(HFModelModule):
    """Causal-LM pretraining. Logs loss and perplexity for train and validation.

    Validation perplexity is exp(mean token cross-entropy over the whole split): the per-batch mean
    loss is aggregated by a token-weighted torchmetrics `MeanMetric`, which also syncs across DDP ranks.
    With the run's tokenizer, `val/bpb` is logged beside it: the split's summed nats per UTF-8 byte of the text
    scored, in bits (`lmlab.modules.bits_per_byte`), comparable across tokenizers.
    With `fused_loss` the loss is computed chunk by chunk with the output projection (`lmlab.modules.losses`),
    never materialising the full logits: it equals the model's own loss with ~30% less peak memory on
    the 4x256 benchmark model, but ~9% more CPU time per step there, hence off by default.
    """

    auto_class = AutoModelForCausalLM
    peft_task_type = "CAUSAL_LM"

    def __init__(self, *args, fused_loss: bool = False, document_masking: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.document_masking = document_masking
        head = self.model.get_output_embeddings()
        # Only a plain bias-free projection is safe to fuse (no logit soft-capping or scaling in between).
        self.fused_loss = fused_loss and type(head) is torch.nn.Linear and head.bias is None and not any(
            getattr(self.model.config, k, None) for k in ("final_logit_softcapping", "logit_scale", "logits_scaling"))
        self.val_loss = MeanMetric()
        self.step_loss = StepLoss()
        self.logits_loss = next_token_cross_entropy  # compiled with model.compile=regional
        if self.tokenizer is not None:  # not when only loaded from a checkpoint (no tokenizer, no validation)
            self.register_buffer("token_bytes", token_byte_lengths(self.tokenizer), persistent=False)
            self.val_nats, self.val_bytes = SumMetric(), SumMetric()

    def configure_model(self) -> None:
        if self.document_masking:  # batches carry per-document position ids: FlexAttention's block mask on a GPU
            on_gpu = self._trainer is not None and self.trainer.strategy.root_device.type == "cuda"
            use_document_attention(self.model, flex=on_gpu)
        super().configure_model()  # FP8, then compilation

    def compile_model(self, scope: bool | str, mode: str | None) -> None:
        if not self.document_masking:
            declare_plain_causal(self.model)  # SDPA keeps is_causal (FlashAttention) when traced too
        if scope == "regional":  # each block, and the loss on the logits (no fp32 copy of them)
            compile_blocks(self.model, mode)
            self.logits_loss = torch.compile(next_token_cross_entropy, dynamic=False, mode=mode)
        else:
            # the whole step's computation, body, output head and loss, as one graph (the model itself
            # stays uncompiled, so its parameter names and generation are unchanged). Static shapes: packed
            # blocks come in two or three batch sizes, each worth its own specialised graph.
            self.next_token_loss = torch.compile(self.next_token_loss, dynamic=False, mode=mode)

    def next_token_loss(self, input_ids: torch.Tensor, position_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Mean cross-entropy of predicting each token from the ones before it (within its document, when
        `position_ids` restart per document)."""
        if not self.fused_loss:
            # not the model's own loss: that one copies the whole logits to fp32 first (lmlab.modules.losses)
            return self.logits_loss(self.model(input_ids=input_ids, position_ids=position_ids).logits, input_ids)
        hidden = self.model.base_model(input_ids=input_ids, position_ids=position_ids).last_hidden_state
        head = self.model.get_output_embeddings()
        return linear_cross_entropy(hidden[:, :-1], head.weight, input_ids[:, 1:])

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        input_ids = batch["input_ids"]
        loss = self.next_token_loss(input_ids, batch.get("position_ids"))
        log_step_loss(self, self.step_loss, loss, input_ids[:, 1:].numel(), batch_idx, perplexity=True)
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        input_ids = batch["input_ids"]
        loss = self.next_token_loss(input_ids, batch.get("position_ids"))
        self.val_loss.update(loss, weight=input_ids[:, 1:].numel())
        if self.tokenizer is not None:
            self.val_nats.update(loss.double() * input_ids[:, 1:].numel())
            self.val_bytes.update(self.token_bytes[input_ids[:, 1:]].sum())

    def on_validation_epoch_end(self) -> None:
        loss = self.val_loss.compute()
        self.log_dict({"val/loss": loss, "val/ppl": loss.exp()}, prog_bar=True, sync_dist=False)
        self.val_loss.reset()
        if self.tokenizer is not None:
            self.log("val/bpb", bits_per_byte(self.val_nats.compute(), self.val_bytes.compute()), sync_dist=False)
            self.val_nats.reset()
            self.val_bytes.reset()
