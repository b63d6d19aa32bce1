"""LoRA adapters (Hugging Face `peft`) of the text encoder over a fixed catalog's item texts, for
tuning the language model jointly with meta-training.

`ItemTextTuner` holds an adapted copy of the encoder and the catalog's texts, tokenized once:
`embed(items)` gives differentiable vectors of some items (a meta-batch's), `encode_all()` the whole
catalog without gradients (the cache the rest of a step reads). Only the adapters train; the base
weights stay frozen, so a run starts exactly at the frozen encoder's vectors (LoRA's B starts at 0).
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass

import numpy as np

from metarec.core.errors import ConfigError
from metarec.core.progress import progress
from metarec.encoders.hf import TextEncoder, _pad_batch, length_batches, pool


@dataclass(frozen=True, kw_only=True)
class AdapterConfig:
    """LoRA adapters of the item-text encoder, trained with meta-training.

    Attributes:
        rank: LoRA rank r of each adapted matrix.
        alpha: LoRA scaling (the update is alpha / r * B A).
        dropout: LoRA dropout.
        target_modules: names of the linear layers to adapt; None = peft's default for the
            architecture (the attention query and value projections of BERT-like encoders).
        lr: the adapters' learning rate (Adam, beside the scoring network's).
        items_per_step: item texts re-encoded with gradients per meta-step (the meta-batch's support
            and query items first); every other item reads the last whole-catalog encoding.
    """

    rank: int = 8
    alpha: int = 16
    dropout: float = 0.0
    target_modules: tuple[str, ...] | None = None
    lr: float = 1e-4
    items_per_step: int = 32

    def __post_init__(self) -> None:
        if self.rank < 1 or self.alpha <= 0 or not 0.0 <= self.dropout < 1.0:
            raise ConfigError("adapters need rank >= 1, alpha > 0 and 0 <= dropout < 1")
        if self.lr <= 0 or self.items_per_step < 1:
            raise ConfigError("adapters need lr > 0 and items_per_step >= 1")


class ItemTextTuner:
    """An adapted copy of `encoder`'s model over `texts` (the catalog's item texts, in catalog order)."""

    def __init__(self, encoder: TextEncoder, texts: list[str], cfg: AdapterConfig, seed: int = 0) -> None:
        import torch

        try:
            from peft import LoraConfig, get_peft_model
        except ImportError as e:
            raise ConfigError("adapter tuning needs peft: pip install peft") from e
        self.cfg, self.encoder = cfg, encoder
        self.pooling, self.normalize = encoder.resolved_pooling, encoder.normalize
        tok = encoder.tokenizer
        self.pad_id, self.padding_side = tok.pad_token_id, tok.padding_side
        self.enc = tok(encoder._heads(list(texts)), truncation=True, max_length=encoder.config.max_length,
                       padding=False)
        self.lengths = np.fromiter((len(x) for x in self.enc["input_ids"]), np.int64, len(texts))
        base = copy.deepcopy(encoder.model).float()  # the frozen encoder stays as it was (and its cache valid)
        torch.manual_seed(seed)  # LoRA's A is drawn at random
        lora = LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout,
                          target_modules=list(cfg.target_modules) if cfg.target_modules else None)
        try:
            with warnings.catch_warnings():  # peft asks transformers a deprecated question; nothing for a user to do
                warnings.simplefilter("ignore", FutureWarning)
                self.model = get_peft_model(base, lora)
        except ValueError as e:  # peft knows no default target modules for this architecture
            raise ConfigError(f"LoRA adapters for {encoder.path}: {e}; name the layers to adapt "
                              "(AdapterConfig.target_modules)") from e
        self.model.eval()  # no dropout in the encoder itself (LoRA dropout is the adapter's own)
        self.device = next(self.model.parameters()).device

    def parameters(self) -> list:
        """The adapters' trainable tensors, in a fixed order."""
        return [p for _, p in self.named_parameters()]

    def named_parameters(self) -> list[tuple]:
        return [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]

    def _forward(self, idx: np.ndarray):
        import torch

        batch = _pad_batch(self.enc, idx, self.pad_id, self.padding_side).to(self.device)
        hidden = self.model(**batch).last_hidden_state
        vec = pool(hidden, batch["attention_mask"], self.pooling, self.padding_side)
        return torch.nn.functional.normalize(vec, dim=-1) if self.normalize else vec

    def embed(self, items: np.ndarray):
        """float32 [n, D] vectors of catalog indices `items`, differentiable in the adapters."""
        import torch

        items = np.asarray(items, np.int64)
        order = np.argsort(-self.lengths[items], kind="stable")
        parts = [self._forward(items[order[a:b]]) for a, b in length_batches(self.lengths[items][order],
                                                                            self.encoder.config.batch_size)]
        out = torch.cat(parts) if parts else torch.zeros(0, self.dim)
        return out[torch.from_numpy(np.argsort(order))]

    def encode_all(self, show_progress: bool = False) -> np.ndarray:
        """float32 [I, D]: the whole catalog through the adapted encoder, without gradients."""
        import torch

        n = len(self.lengths)
        order = np.argsort(-self.lengths, kind="stable")
        out = np.empty((n, self.dim), np.float32)
        bar = progress(total=n, desc="re-encode", unit="text", disable=None if show_progress else True)
        with torch.inference_mode():
            for a, b in length_batches(self.lengths[order], self.encoder.config.batch_size):
                out[order[a:b]] = self._forward(order[a:b]).float().cpu().numpy()
                bar.update(b - a)
        bar.close()
        return out

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)
