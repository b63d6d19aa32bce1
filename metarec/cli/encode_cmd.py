"""`metarec encode`: embed a dataset's catalog (and user profiles) through the cache."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import numpy as np
import typer

from metarec.cli.common import DataDirOpt, DatasetOpt, JsonOpt, emit_json, emit_table, fail
from metarec.core.config import atomic_write_bytes, atomic_write_text
from metarec.core.errors import MetarecError


def encode(
    dataset: DatasetOpt,
    data_dir: DataDirOpt = None,
    model: Optional[str] = typer.Option(None, help="HF model id or local folder (default: bundled all-MiniLM-L6-v2)."),
    pooling: str = typer.Option("auto", help="auto, mean, cls or last."),
    normalize: Optional[bool] = typer.Option(None, "--normalize/--no-normalize",
                                             help="L2-normalise (default: the model's own setting)."),
    max_length: int = typer.Option(256, help="Tokens per text."),
    batch_size: int = typer.Option(64, help="Texts per forward pass."),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:N."),
    dtype: str = typer.Option("auto", help="auto, float32, bfloat16, float16 (GPU)."),
    cache_dir: Optional[Path] = typer.Option(None, help="Embedding cache (default: $METAREC_CACHE_DIR or "
                                             "~/.cache/metarec)."),
    users: bool = typer.Option(True, "--users/--no-users",
                               help="Also encode user profiles where the dataset has them."),
    export: Optional[Path] = typer.Option(None, help="Write DIR/items.npy and DIR/items.jsonl."),
    json_out: JsonOpt = False,
) -> None:
    """Encode item texts (and user profiles) with a language model; report count, dim, time, cache hits."""
    from metarec.data import load_dataset
    from metarec.encoders import EncoderConfig, TextEncoder, encode_catalog
    from metarec.encoders.templates import user_texts
    from metarec.meta.user import plain_id

    try:
        data = load_dataset(dataset, data_dir)
        enc = TextEncoder(EncoderConfig(model=model, pooling=pooling, normalize=normalize, max_length=max_length,
                                        batch_size=batch_size, device=device, dtype=dtype))
        has_profiles = users and any(t for t in user_texts(data.users))
        vecs, texts, st = encode_catalog(data, encoder=enc, cache_dir=cache_dir, users=has_profiles)
    except MetarecError as e:
        fail(e)
    item_vecs, item_txt = (vecs[0], texts[0]) if has_profiles else (vecs, texts)
    if export is not None:
        import io

        buf = io.BytesIO()
        np.save(buf, item_vecs.astype(np.float32), allow_pickle=False)
        atomic_write_bytes(export / "items.npy", buf.getvalue())
        lines = [json.dumps({"item_id": plain_id(i), "text": t}, ensure_ascii=False)
                 for i, t in zip(data.item_ids, item_txt)]
        atomic_write_text(export / "items.jsonl", "\n".join(lines) + "\n")
    out = {"dataset": data.name, "model": model or "all-MiniLM-L6-v2", "model_path": enc.path,
           "pooling": enc.resolved_pooling, "normalize": enc.normalize, "n_texts": st.n_texts,
           "n_items": int(item_vecs.shape[0]), "n_users": int(vecs[1].shape[0]) if has_profiles else 0,
           "dim": st.dim, "seconds": round(st.seconds, 3), "cache_hits": st.cache_hits,
           "fingerprint": enc.fingerprint()}
    if export is not None:
        out["export"] = str(export)
    if json_out:
        emit_json(out)
    else:
        emit_table(f"encode {dataset}", list(out.items()))
