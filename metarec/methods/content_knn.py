"""Content kNN: cosine similarity between the mean support-item text embedding and every item."""

from __future__ import annotations

import numpy as np

from metarec.encoders import EncoderConfig, TemplateConfig, item_embeddings
from metarec.data.protocol import FitData, SupportBatch, Validator
from metarec.methods.base import Method
from metarec.methods.registry import register


@register
class ContentKNN(Method):
    """Zero training: frozen text embeddings of the catalog; score = cos(mean support vector, item)."""

    name = "content-knn"
    min_support = 1

    def __init__(self, seed: int = 0, encoder: EncoderConfig | None = None,
                 template: TemplateConfig | None = None) -> None:
        """`template`: which item fields make the text (default: every field the data has)."""
        super().__init__(seed)
        self.encoder, self.template = encoder, template

    def fit(self, data: FitData, validator: Validator | None = None) -> "ContentKNN":
        v = item_embeddings(data.items, self.encoder, self.template).astype(np.float64)
        self.vecs = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
        return self

    def score(self, batch: SupportBatch) -> np.ndarray:
        self.check_support(batch)
        q = self.vecs[batch.support_items].mean(axis=1)
        q /= np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        return q @ self.vecs.T
