"""Top-k recommendations for many new users at once: the batched twin of `rec.adapt(...).ranked(k)`.

Users with the same number of interactions are adapted and scored together (one forward over a
chunk of users instead of one per user), with the same inner-loop negatives a single `adapt` draws,
so each user's list is the one `adapt` gives. Bad input is refused before any work, naming the row
(and, for a file read by `metarec.data.loaders.read_interactions`, the file and line).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from metarec.core.errors import ConfigError, DataFormatError, UnknownItemError
from metarec.core.progress import progress
from metarec.core.threads import numpy_single_thread
from metarec.meta.user import check_k, plain_id, top_k


def recommend_many(rec, interactions: pd.DataFrame, k: int = 10, *, profiles: Mapping | None = None,
                   chunk: int | None = None) -> pd.DataFrame:
    """The k best items for every user in `interactions`, support items left out.

    Args:
        rec: a MetaRecommender.
        interactions: one row per (user_id, item_id), optionally with `rating` (NaN = unknown) and
            `timestamp` (sorts each user's rows; otherwise their order in the frame is kept).
        profiles: optional {user_id: profile text} (keys matched as text: 7 and "7" are one
            user); a user found only here is scored from the profile alone (K = 0).
        chunk: users per forward pass (default: about a million candidate rows).

    Returns:
        rows `user_id, rank, item_id, title, score`, users in the order first seen, best item first
        (ties by catalog order); title is None when the model has no titles.
    """
    k = check_k(k)
    users, support, ratings = _supports(rec, interactions)
    # matched by their text, so 7 and "7" are one user (ids read from a CSV are strings)
    by_text = {str(u): text for u, text in (profiles or {}).items()}
    known = {str(u) for u in users}
    extra = [u for u in (profiles or {}) if str(u) not in known]  # profile-only users (K = 0)
    users += extra
    support += [np.zeros(0, np.int64)] * len(extra)
    ratings += [np.zeros(0, np.float32)] * len(extra)
    prof = rec.encode_profiles([by_text.get(str(u)) for u in users], show_progress=False)

    n_i = rec.side.n_items
    chunk = chunk or rec.users_per_forward()
    weights = rec.scoring_weights()
    sizes = np.array([len(s) for s in support])
    top = np.zeros((len(users), min(k, n_i)), np.int64)
    top_s = np.full(top.shape, -np.inf)
    bar = progress(total=len(users), desc="recommend", unit="user")
    with numpy_single_thread():
        for size in np.unique(sizes):
            rows = np.flatnonzero(sizes == size)
            for start in range(0, len(rows), chunk):
                r = rows[start:start + chunk]
                sup = np.stack([support[i] for i in r]).reshape(len(r), size)
                rat = np.stack([ratings[i] for i in r]).reshape(len(r), size)
                # a fresh float32 array: -inf goes in place, and top_k ranks it as it is
                s = rec._score_chunk(sup, rat, prof[r], weights)
                np.put_along_axis(s, sup, -np.inf, axis=1)
                top[r], top_s[r] = top_k(s, top.shape[1])
                bar.update(len(r))
    bar.close()
    keep = np.isfinite(top_s)  # a catalog smaller than k + K runs out of items
    n_u = keep.sum(axis=1)
    flat = top[keep]
    ids = np.asarray(rec.item_ids, dtype=object)
    return pd.DataFrame({
        "user_id": np.repeat(np.asarray(users, dtype=object), n_u),
        "rank": np.concatenate([np.arange(1, n + 1) for n in n_u]) if len(users) else np.zeros(0, np.int64),
        "item_id": [plain_id(i) for i in ids[flat]],
        "title": [rec.titles[i] for i in flat] if rec.titles else [None] * len(flat),
        "score": top_s[keep],
    })


def _supports(rec, df: pd.DataFrame) -> tuple[list, list[np.ndarray], list[np.ndarray]]:
    """(users in first-seen order, each user's catalog indices, each user's ratings), checked."""
    missing = [c for c in ("user_id", "item_id") if c not in df.columns]
    if missing:
        raise ConfigError(f"interactions: missing column(s) {missing}; found {list(df.columns)}")
    n = len(df)
    pos = np.arange(n)
    if "timestamp" in df.columns:
        pos = pos[np.argsort(df["timestamp"].to_numpy(), kind="stable")]
    items = df["item_id"].to_numpy()
    idx = np.array([rec._index.get(i, rec._str_index.get(str(i), -1)) for i in items], np.int64)
    if (idx < 0).any():
        row = int(np.flatnonzero(idx < 0)[0])
        _refuse(df, row, f"item id {plain_id(items[row])!r} is not in this model's catalog", UnknownItemError)
    rating = (df["rating"].to_numpy(np.float64) if "rating" in df.columns else np.full(n, np.nan))
    bad = rec.off_scale(rating)  # as float64: a huge rating is refused, not cast to inf first
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        _refuse(df, row, f"rating {float(rating[row]):g} is outside this model's {rec.rating_scale}")
    rating = rating.astype(np.float32)  # what adapt() scores with
    twice = pd.DataFrame({"u": df["user_id"].to_numpy(), "i": idx}).duplicated().to_numpy()
    if twice.any():
        row = int(np.flatnonzero(twice)[0])
        _refuse(df, row, f"item {plain_id(items[row])!r} given twice (it would count double)")
    user = df["user_id"].to_numpy()[pos]
    codes, uniq = pd.factorize(user)  # first-seen order of the time-sorted rows
    first = pd.factorize(df["user_id"].to_numpy())[1]  # first-seen order in the frame
    groups = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[groups], np.arange(len(uniq) + 1))
    by_user = {u: pos[groups[bounds[c]:bounds[c + 1]]] for c, u in enumerate(uniq)}
    users = list(first)
    return users, [idx[by_user[u]] for u in users], [rating[by_user[u]] for u in users]


def _refuse(df: pd.DataFrame, row: int, message: str, kind: type = ConfigError):
    """Raise for input row `row` (naming its user): with its file and line when the frame came from
    a file, else with its index label (the HTTP app labels rows by their place in the request)."""
    message = f"user {plain_id(df['user_id'].iloc[row])!r}: {message}"
    path, lines = df.attrs.get("path"), df.attrs.get("line")
    if path is not None:
        line = int(lines[row]) if lines is not None else None
        raise DataFormatError(message if line is not None else f"row {row + 1}: {message}", path=path, line=line)
    label = plain_id(df.index[row])  # a position (interactions row 2), or a name the caller gave the row
    raise kind(f"{f'interactions row {label}' if isinstance(label, int) else label}: {message}")
