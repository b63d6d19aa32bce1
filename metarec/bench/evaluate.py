"""Protocol evaluation of one fitted method on one set of new users (the runner's inner loop).

Methods only ever receive the `FitData` and `SupportBatch`es of `metarec.data.protocol`; query sets stay
there and here. Also `evaluate_model`: a saved model scored on the split it was trained with.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from metarec.bench.stats import mean_ci
from metarec.core.config import from_dict
from metarec.core.errors import CheckpointError, ConfigError
from metarec.core.metrics import mae, ranking_metrics, rmse, top_k
from metarec.data.interactions import InteractionData
from metarec.data.splits import DEFAULT_SHOTS, ColdStartSplit, Episodes, SplitConfig, make_split
from metarec.encoders import EncoderConfig
from metarec.meta.checkpoint import load_json, require
from metarec.meta.recommender import MetaRecommender
from metarec.meta.train import score_users
from metarec.data.protocol import SCORE_CHUNK, SupportBatch, metrics_for, score_episodes, support_batch
from metarec.methods.base import Method

WARM_SAMPLE = 2000  # returning warm users the runner scores per K for the warm-user scenarios
EVAL_FLOATS = 2 ** 26  # score entries held at once by evaluate_episodes: 512 MB as float64


NEW_ARRIVALS = "new-arrivals"  # the view that ranks only the items first seen after the cut


def new_arrival_metrics(scores: np.ndarray, ep: Episodes, new_items: np.ndarray, rng: np.random.Generator,
                        threshold: float | None = None) -> dict[str, np.ndarray]:
    """Per-user NDCG@10 and recall@10 when only the new items are ranked (relevance: the user's query
    items among them; NaN for users with none). Ties are broken in a seeded random order, so a method
    that scores every unseen item alike ranks them at random: the floor a method using text must beat."""
    cols = np.flatnonzero(new_items)
    cols = cols[rng.permutation(len(cols))]  # the top-k's ties go to the lower column: a random item
    rel = ep.relevant(threshold)[:, cols]
    m = ranking_metrics(scores[:, cols], rel, (10,))
    return {"ndcg@10": m["ndcg@10"], "recall@10": m["recall@10"],
            "n_relevant": np.asarray(rel.sum(axis=1)).ravel().astype(np.float64)}


def new_share(scores: np.ndarray, new_items: np.ndarray, k: int = 10) -> np.ndarray:
    """float [U]: the share of each user's full-catalog top k that are new items."""
    top = top_k(scores, k)
    ok = top >= 0  # a row with fewer than k rankable items ends in -1
    return (new_items[np.maximum(top, 0)] & ok).sum(axis=1) / np.maximum(ok.sum(axis=1), 1)


def evaluate_episodes(score_fn: Callable[[SupportBatch], np.ndarray], split: ColdStartSplit, ep: Episodes,
                      item_masks: dict[str, np.ndarray | None], *, threshold: float | None = None,
                      new_arrivals: np.random.Generator | None = None
                      ) -> tuple[dict[str, dict[str, np.ndarray]], float]:
    """Per-user metrics for each named item mask (None = every item), and the seconds spent scoring.

    With `new_arrivals` (the generator of its random tie-break order), also the NEW_ARRIVALS view
    (`new_arrival_metrics`) and, in the "all" view, each user's share of new items in their top 10
    (`new_share@10`), when the split has new items.

    Users are scored a block at a time, so memory stays at about EVAL_FLOATS scores however many
    users there are (thousands of warm users x a large catalog would not fit as one array). Blocks
    are whole multiples of SCORE_CHUNK, so `score_fn` sees exactly the batches it would see at once.
    """
    n_items = split.data.n_items
    block = SCORE_CHUNK * max(1, EVAL_FLOATS // (SCORE_CHUNK * max(n_items, 1)))
    new = split.new_items if new_arrivals is not None and split.new_items.any() else None
    parts: dict[str, list[dict[str, np.ndarray]]] = {name: [] for name in item_masks}
    if new is not None:
        parts[NEW_ARRIVALS] = []
        order_rng = np.random.default_rng(new_arrivals.integers(2 ** 63))  # one tie-break order per block
    seconds = 0.0
    for start in range(0, len(ep), block):
        sub = ep if len(ep) <= block else ep.take(np.arange(start, min(start + block, len(ep))))
        t0 = time.perf_counter()
        scores = score_episodes(score_fn, split, sub)
        seconds += time.perf_counter() - t0
        for name, mask in item_masks.items():
            parts[name].append(metrics_for(scores, sub, threshold=threshold, item_mask=mask))
        if new is not None:
            parts[NEW_ARRIVALS].append(new_arrival_metrics(scores, sub, new, order_rng, threshold))
            if "all" in parts:
                parts["all"][-1]["new_share@10"] = new_share(scores, new)
    out = {name: {m: np.concatenate([p[m] for p in ps]) for m in ps[0]} for name, ps in parts.items() if ps}
    return out, seconds


def rating_errors(method: Method, split: ColdStartSplit, ep: Episodes) -> dict[str, np.ndarray]:
    """Per-user MAE and RMSE of a rating-predicting method on the query items' known ratings.

    MeLU-comparable, reported beside (never instead of) the full-ranking metrics; users whose query
    ratings are all unknown get NaN."""
    out = {"query_mae": np.full(len(ep), np.nan), "query_rmse": np.full(len(ep), np.nan)}
    for start in range(0, len(ep), SCORE_CHUNK):
        rows = np.arange(start, min(start + SCORE_CHUNK, len(ep)))
        preds = method.predict_ratings(support_batch(split, ep, rows), [ep.query_items[u] for u in rows])
        for u, pred in zip(rows, preds):
            truth = np.asarray(ep.query_ratings[u], np.float64)
            ok = ~np.isnan(truth)
            if ok.any():
                out["query_mae"][u] = mae(np.asarray(pred)[ok], truth[ok])
                out["query_rmse"][u] = rmse(np.asarray(pred)[ok], truth[ok])
    return out


SUMMARY = ("ndcg@10", "recall@10", "precision@10", "map@10", "hit@10", "ndcg@20", "recall@20")


def evaluate_model(model: str | Path, data: InteractionData, shots=DEFAULT_SHOTS, *, which: str = "test",
                   device: str = "cpu") -> list[dict]:
    """A folder written by `meta_train`, scored on the new users of the split it was trained with
    (`which`: "test", or "val") at each K, the protocol's way (full catalog, support excluded).

    Returns one row per K: users, and the mean over users with its 95% t-interval of each metric.
    Refuses `data` that is not the log the model was trained on (another log's "test users" may be
    the model's training users), and a folder without `split.json`."""
    path = Path(model)
    if not (path / "split.json").is_file():
        raise CheckpointError(f"{path}: no split.json; evaluate needs the split the model was trained with "
                              "(written by meta_train / metarec meta-train)")
    rec_split = require(load_json(path / "split.json"), path / "split.json", "data", "split")
    trained, given = rec_split["data"], data.fingerprint()
    if trained != given:
        raise ConfigError(f"{path} was trained on {trained['name']} ({trained['n_users']} users, "
                          f"{trained['n_items']} items, hash {trained['hash'][:12]}), not on these interactions "
                          f"({given['name']}, {given['n_users']} users, {given['n_items']} items, hash "
                          f"{given['hash'][:12]}): its held-out users would not be held out")
    if which not in ("test", "val"):
        raise ConfigError(f"which must be 'test' or 'val', got {which!r}")
    split = make_split(data, from_dict(SplitConfig, rec_split["split"], where="split.json split"))
    rec = MetaRecommender.load(path, device=device)
    encoder = from_dict(EncoderConfig, rec.info.encoder) if rec.info.encoder else None
    rows = []
    for k in shots:
        ep = split.episodes(which, int(k))
        row: dict = {"k": int(k), "users": len(ep)}
        if len(ep):
            per_user = evaluate_episodes(lambda b: score_users(rec, b, encoder), split, ep, {"all": None})[0]["all"]
            for m in SUMMARY:
                row[m], row[f"{m} ci"] = mean_ci(per_user[m])
        rows.append(row)
    return rows
