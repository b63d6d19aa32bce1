"""On-disk embedding cache: one folder per encoder+template fingerprint, append-only shards.

Each shard is `NNNNNN.npy` (float32 [n, D], memory-mapped on read) plus `NNNNNN.keys.npy` (uint8
[n, 32], the sha256 of each text; not numpy "S32", which strips trailing NUL bytes of a digest).
Both are written atomically, keys last, so a crash never leaves a readable half shard.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import numpy as np
from platformdirs import user_cache_dir

from metarec.core.config import atomic_write_bytes


def default_cache_dir() -> Path:
    """$METAREC_CACHE_DIR, else the user cache directory (~/.cache/metarec)."""
    env = os.environ.get("METAREC_CACHE_DIR")
    return Path(env) if env else Path(user_cache_dir("metarec"))


def text_key(text: str) -> bytes:
    """The cache key of one text: the sha256 of its UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).digest()


class EmbeddingCache:
    """Vectors by text under one fingerprint. `get(texts)` -> (vectors or None per text)."""

    def __init__(self, fingerprint: str, root: str | Path | None = None) -> None:
        self.dir = Path(root or default_cache_dir()) / "embeddings" / fingerprint
        self._index: dict[bytes, tuple[int, int]] | None = None
        self._shards: dict[int, np.ndarray] = {}

    def _load_index(self) -> dict[bytes, tuple[int, int]]:
        if self._index is None:
            self._index = {}
            if self.dir.is_dir():
                for kf in sorted(self.dir.glob("*.keys.npy")):
                    sid = int(kf.name.split(".")[0])
                    keys = np.load(kf, allow_pickle=False)
                    for row, k in enumerate(keys):
                        self._index[k.tobytes()] = (sid, row)
        return self._index

    def _shard(self, sid: int) -> np.ndarray:
        if sid not in self._shards:
            self._shards[sid] = np.load(self.dir / f"{sid:06d}.npy", mmap_mode="r", allow_pickle=False)
        return self._shards[sid]

    def lookup(self, texts: list[str]) -> tuple[np.ndarray, list[np.ndarray | None]]:
        """(hit mask bool [N], vectors: array per hit, None per miss)."""
        index = self._load_index()
        hits = np.zeros(len(texts), bool)
        vecs: list[np.ndarray | None] = []
        for i, t in enumerate(texts):
            loc = index.get(text_key(t))
            if loc is None:
                vecs.append(None)
            else:
                hits[i] = True
                vecs.append(np.asarray(self._shard(loc[0])[loc[1]]))
        return hits, vecs

    def put(self, texts: list[str], vectors: np.ndarray) -> None:
        if not texts:
            return
        index = self._load_index()
        keys, rows = [], []
        for t, v in zip(texts, vectors):
            k = text_key(t)
            if k not in index and k not in keys:
                keys.append(k)
                rows.append(v)
        if not keys:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        sid = max((int(p.name.split(".")[0]) for p in self.dir.glob("*.keys.npy")), default=-1) + 1
        for name, arr in ((f"{sid:06d}.npy", np.asarray(rows, np.float32)),
                          (f"{sid:06d}.keys.npy", np.frombuffer(b"".join(keys), np.uint8).reshape(-1, 32))):
            buf = io.BytesIO()
            np.save(buf, arr, allow_pickle=False)
            atomic_write_bytes(self.dir / name, buf.getvalue())
        for row, k in enumerate(keys):
            index[k] = (sid, row)
