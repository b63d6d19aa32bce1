"""Candidate retrieval for catalogs too large to score whole: which items an adapted user's exact
scoring visits.

A score is `skip . feats + MLP([u * v, feats])` (models.scoring). No index can serve it whole (the
MLP is not a dot product), so candidates come from three places and are then re-scored exactly by
the full network (meta.retrieve):

  index       the part of the score that is linear in a fixed item vector z_i, served by a FAISS
              inner-product index (IVF): z_i = [text_i, v_i, pop_i, new_i, trend_i] against
              q_u = [a_content * mean support text, u * g, a_pop, a_new, a_trend], where g and a
              are the head's first-order expansion (its hidden units weighed by how often they fire
              on the user's inner-loop items) and a also holds the skip weights. The content feature
              is exactly such a product; the rest is an approximation that only picks candidates.
  neighbours  items that co-occur with a support item (the knn feature, and ease where present):
              sparse rows read exactly, the strongest `neighbours` of them.
  popular     the catalog's most popular and most trending items (a fixed short list).

`RetrievalConfig` says when this path is taken (catalog size) and how wide it looks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from metarec.core.errors import ConfigError
from metarec.models.features import FEATURES, ItemSide
from metarec.models.scoring import ScoreInputs, ScoringConfig, head_input, project, rows, skip_weights, vectors

INDEX_FEATURES = ("pop", "new", "trend")  # item-only features the index vector carries, after text and v


@dataclass(frozen=True, kw_only=True)
class RetrievalConfig:
    """When and how candidates replace full-catalog scoring.

    Attributes:
        mode: "auto" = on for catalogs of at least `min_items` items; "on" = always; "off" = never
            (every item is scored through the network).
        min_items: the catalog size from which "auto" retrieves.
        candidates: items the index returns per user.
        neighbours: strongest co-occurring items of the support set added per user.
        popular: most popular and most trending items always re-scored (each list this long).
        nlist: the index's inverted lists (None: about sqrt(items), at most 1024).
        nprobe: lists visited per search.
        seed: the k-means seed of the index.
    """

    mode: Literal["auto", "on", "off"] = "auto"
    min_items: int = 100_000
    candidates: int = 1000
    neighbours: int = 500
    popular: int = 100
    nlist: int | None = None
    nprobe: int = 32
    seed: int = 0

    def __post_init__(self) -> None:
        if self.mode not in ("auto", "on", "off"):
            raise ConfigError(f"retrieval mode must be 'auto', 'on' or 'off', got {self.mode!r}")
        if min(self.candidates, self.nprobe) < 1 or min(self.neighbours, self.popular, self.min_items) < 0:
            raise ConfigError("retrieval needs candidates, nprobe >= 1 and neighbours, popular, min_items >= 0")
        if self.nlist is not None and self.nlist < 1:
            raise ConfigError(f"nlist must be >= 1, got {self.nlist}")

    def active(self, n_items: int) -> bool:
        return self.mode == "on" or (self.mode == "auto" and n_items >= self.min_items)


def _faiss():
    try:
        import faiss
    except ImportError as e:  # a core dependency; said plainly if an install lacks it
        raise ConfigError("candidate retrieval needs faiss: pip install faiss-cpu") from e
    return faiss


def item_fixed(side: ItemSide) -> np.ndarray:
    """float32 [I, 3]: pop, new and trend of every item, as the catalog features give them."""
    sf = side.support_features(np.zeros((1, 0), np.int64), np.zeros((1, 0), bool), features=("pop",))
    return np.ascontiguousarray(sf.full[0][:, [FEATURES.index(f) for f in INDEX_FEATURES]])


def item_matrix(side: ItemSide, params: dict[str, Tensor], cfg: ScoringConfig, item_text: Tensor) -> np.ndarray:
    """float32 [I, E + d + 3]: each item's z_i (module docstring) under the start weights `params`."""
    with torch.no_grad():
        v = project(params, item_text)  # the start's projection, also where adapt="all" changes it per user
        if cfg.use_ids:
            keep = torch.from_numpy((side.counts > 0).astype(np.float32)).to(v)
            v = v + rows(params["shared.id_emb"], torch.arange(side.n_items, device=v.device)) * keep[:, None]
    return np.ascontiguousarray(np.hstack([side.text, v.float().cpu().numpy(), item_fixed(side)]), np.float32)


class CandidateIndex:
    """A FAISS inner-product index over z (`item_matrix`) plus the fixed popular list."""

    def __init__(self, z: np.ndarray, counts: np.ndarray, recent: np.ndarray | None, cfg: RetrievalConfig,
                 gpu: int | None = None) -> None:
        """`gpu`: a CUDA device to search on, where the installed faiss has GPU support (faiss-gpu);
        otherwise the index stays on the CPU."""
        faiss = _faiss()
        n, dim = z.shape
        nlist = cfg.nlist or int(min(1024, max(1, round(np.sqrt(n))), max(1, n // 39)))  # faiss wants 39 points a list
        nlist = min(nlist, n)
        quantizer = faiss.IndexFlatIP(dim)
        self.index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        self.index.cp.seed = cfg.seed
        self.index.cp.max_points_per_centroid = 64  # k-means on a sample: minutes saved at 1M items
        self.index.train(z)
        self.index.add(z)
        self.index.nprobe = min(cfg.nprobe, nlist)
        if gpu is not None and hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > gpu:
            self._gpu = faiss.StandardGpuResources()  # kept: the GPU index uses it
            self.index = faiss.index_cpu_to_gpu(self._gpu, gpu, self.index)
            self.index.nprobe = min(cfg.nprobe, nlist)
        self.cfg, self.n_items, self._quantizer = cfg, n, quantizer  # the quantizer must outlive the index
        top = [np.argsort(-counts, kind="stable")[:cfg.popular]]
        if recent is not None:
            top.append(np.argsort(-recent, kind="stable")[:cfg.popular])
        self.popular = np.unique(np.concatenate(top)).astype(np.int64)

    def search(self, queries: np.ndarray, n: int | None = None) -> np.ndarray:
        """int64 [U, n] the best items by q . z per query (-1 where fewer exist)."""
        _, idx = self.index.search(np.ascontiguousarray(queries, np.float32), n or self.cfg.candidates)
        return idx.astype(np.int64)


def neighbours(side: ItemSide, support: np.ndarray, n: int) -> np.ndarray:
    """int64: the `n` items with the largest knn feature (sum of cosines over the stored
    co-occurrences of `support`, int64 [K]), plus the `n` largest summed ease weights where the side
    has them; support items themselves left out."""
    if not len(support) or n == 0:
        return np.zeros(0, np.int64)
    r = side.cooc[support].tocoo()
    c = side.counts
    cos = r.data / np.sqrt(np.maximum(c[support[r.row]] * c[r.col], 1e-12))
    items, at = np.unique(r.col, return_inverse=True)  # the stored entries only: no pass over the catalog
    out = [items[_top(np.bincount(at, weights=cos), n)].astype(np.int64)]
    if side.ease_p is not None:
        b = side._ease_rows(support[None], np.ones((1, len(support)), bool), None)[0].sum(axis=0)
        out.append(_top(b, n))
    return np.setdiff1d(np.concatenate(out), support)


def _top(x: np.ndarray, n: int) -> np.ndarray:
    """Indices of the (at most) n largest positive entries of x."""
    pos = np.flatnonzero(x > 0)
    if len(pos) > n:
        pos = pos[np.argpartition(-x[pos], n - 1)[:n]]
    return pos.astype(np.int64)


def queries(params: dict[str, Tensor], cfg: ScoringConfig, item_text: Tensor, x: ScoreInputs,
            proj: Tensor | None, text_sum: np.ndarray) -> np.ndarray:
    """float32 [T, E + d + 3]: q_u for each adapted task of `x` (module docstring).

    Args:
        params: the adapted parameters (head weights may carry a task dimension).
        x: the tasks' inner-loop items scored with the whole support set (candidates, no drop):
            the hidden units' firing rates are read on them.
        text_sum: float [T, E] sum of each support set's text vectors.
    """
    with torch.no_grad():
        v, u = vectors(params, cfg, item_text, x, proj)
        u, v = head_input(params, cfg, x, v, u)  # u [T, 1, d] with the profile
        if v.shape[0] != x.items.shape[0]:
            v = v.expand(x.items.shape[0], -1, -1)
        d = v.shape[-1]
        w1, b1, w2 = params["head.w1"], params["head.b1"], params["head.w2"]
        w1 = w1 if w1.dim() == 3 else w1.expand(len(v), *w1.shape)
        b1 = b1 if b1.dim() == 2 else b1.expand(len(v), -1)
        w2 = w2 if w2.dim() == 3 else w2.expand(len(v), *w2.shape)
        pre = torch.matmul(torch.cat([u * v, x.feats], -1), w1) + b1.unsqueeze(1)  # [T, N, hidden]
        rate = (pre > 0).to(pre.dtype).mean(1)  # [T, hidden]
        g = torch.matmul(w1, (w2.squeeze(-1) * rate).unsqueeze(-1)).squeeze(-1)  # [T, d + F]
        a = g[:, d:] + skip_weights(params, cfg, x).expand(len(v), -1)  # [T, F] per configured feature
        q_v = u[:, 0] * g[:, :d]
    a = a.float().cpu().numpy()
    weight = {f: a[:, n] for n, f in enumerate(cfg.features)}
    zero = np.zeros(len(a), np.float32)
    norm = np.linalg.norm(text_sum, axis=1, keepdims=True)
    mean = np.divide(text_sum, norm, out=np.zeros_like(text_sum), where=norm > 0)
    text_w = weight.get("content", zero)[:, None] * mean
    fixed = np.stack([weight.get(f, zero) for f in INDEX_FEATURES], axis=1)
    return np.hstack([text_w, q_v.float().cpu().numpy(), fixed]).astype(np.float32)
