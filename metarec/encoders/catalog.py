"""Encode texts through the cache: only texts never seen under this fingerprint reach the model."""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from metarec.data.interactions import InteractionData
from metarec.encoders.cache import EmbeddingCache
from metarec.encoders.hf import EncoderConfig, TextEncoder
from metarec.encoders.templates import TemplateConfig, item_texts, user_texts

log = logging.getLogger(__name__)


@dataclass
class EncodeStats:
    n_texts: int
    cache_hits: int
    seconds: float
    dim: int


def encode_texts(texts: list[str], encoder: TextEncoder, *, cache_dir: str | Path | None = None,
                 namespace: str = "", use_cache: bool = True,
                 show_progress: bool = True) -> tuple[np.ndarray, EncodeStats]:
    """float32 [N, D] for `texts`; misses are encoded (length-sorted) and written to the cache.

    `namespace` (e.g. the template fingerprint) is folded into the cache key, so vectors made under
    another template are never served even for an identical string.
    """
    t0 = time.perf_counter()
    if not use_cache:
        vecs = encoder.encode(texts, show_progress=show_progress)
        return vecs, EncodeStats(len(texts), 0, time.perf_counter() - t0, vecs.shape[1])
    fp = hashlib.sha256(f"{encoder.fingerprint()}|{namespace}".encode()).hexdigest()[:24]
    cache = EmbeddingCache(fp, cache_dir)
    hits, found = cache.lookup(texts)
    miss_idx = np.flatnonzero(~hits)
    # unique misses only: a catalog with repeated texts is encoded once per distinct text
    uniq = list(dict.fromkeys(texts[i] for i in miss_idx))
    dim = None
    if uniq:
        new = encoder.encode(uniq, show_progress=show_progress)
        cache.put(uniq, new)
        dim = new.shape[1]
        by_text = dict(zip(uniq, new))
        for i in miss_idx:
            found[i] = by_text[texts[i]]
    if dim is None:
        dim = found[0].shape[0] if found else encoder.dim
    out = np.stack(found).astype(np.float32) if found else np.zeros((0, dim), np.float32)
    stats = EncodeStats(len(texts), int(hits.sum()), time.perf_counter() - t0, dim)
    # said when something was encoded; a pass served wholly from the cache (each validation's
    # profiles) is no news
    log.log(logging.INFO if stats.cache_hits < stats.n_texts else logging.DEBUG,
            "encoded %d texts (%d cache hits) in %.2fs", stats.n_texts, stats.cache_hits, stats.seconds)
    return out, stats


def encode_catalog(data: InteractionData, *, encoder: TextEncoder | None = None,
                   template: TemplateConfig | None = None, cache_dir: str | Path | None = None,
                   users: bool = False, show_progress: bool = True):
    """Item vectors [n_items, D] (and user-profile vectors [n_users, D] when `users`), with stats."""
    encoder = encoder or TextEncoder(EncoderConfig())
    template = template or TemplateConfig()
    texts = item_texts(data.items, template)
    items, st = encode_texts(texts, encoder, cache_dir=cache_dir, namespace=template.fingerprint(),
                             show_progress=show_progress)
    if not users:
        return items, texts, st
    utexts = user_texts(data.users, template)
    uvecs, ust = encode_texts(utexts, encoder, cache_dir=cache_dir, namespace=template.fingerprint(),
                              show_progress=show_progress)
    st = EncodeStats(st.n_texts + ust.n_texts, st.cache_hits + ust.cache_hits, st.seconds + ust.seconds, st.dim)
    return (items, uvecs), (texts, utexts), st


def item_embeddings(items, config: EncoderConfig | None = None, template: TemplateConfig | None = None) -> np.ndarray:
    """float32 [n_items, D] frozen catalog embeddings through the on-disk cache (no progress bar)."""
    template = template or TemplateConfig()
    vecs, _ = encode_texts(item_texts(items, template), TextEncoder(config or EncoderConfig()),
                           namespace=template.fingerprint(), show_progress=False)
    return vecs


def profile_vectors(users, config: EncoderConfig | None = None, template: TemplateConfig | None = None) -> np.ndarray:
    """float32 [U, D] profile-text embeddings, zeros for users with no profile fields ([U, 0] when
    no user has any: the caller decides what a missing profile means)."""
    template = template or TemplateConfig()
    texts = user_texts(users, template)
    nonempty = [i for i, t in enumerate(texts) if t]
    if not nonempty:
        return np.zeros((len(texts), 0), np.float32)
    vecs, _ = encode_texts([texts[i] for i in nonempty], TextEncoder(config or EncoderConfig()),
                           namespace=template.fingerprint(), show_progress=False)
    out = np.zeros((len(texts), vecs.shape[1]), np.float32)
    out[nonempty] = vecs
    return out

