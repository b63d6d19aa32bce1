"""The one in-memory interaction log: contiguous user/item indices plus the catalog of item text.

Original ids are mapped to 0..n-1 once, here; the mapping is kept (`user_ids`, `item_ids`) so every
output speaks the dataset's own ids again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from metarec.core.digest import array_digest
from metarec.core.errors import UnknownItemError

log = logging.getLogger(__name__)

# what a loader may know of an item (None where it does not); templates choose which become its text
ITEM_FIELDS = ("title", "year", "genres", "brand", "description", "features", "director", "cast")
USER_FIELDS = ("age", "gender", "occupation", "description")


@dataclass(frozen=True, eq=False)
class InteractionData:
    """An interaction log over a fixed catalog.

    Attributes:
        name: dataset name (e.g. "ml-100k").
        user: int64 [N] user index per interaction.
        item: int64 [N] item index per interaction.
        rating: float32 [N] explicit rating, or the implicit weight (1.0) where there is none.
        timestamp: int64 [N] unix seconds, or None when the dataset has no time.
        user_ids: [n_users] original user id of each user index.
        item_ids: [n_items] original item id of each item index (catalog order).
        items: DataFrame [n_items] with columns title, year, genres (tuple), description.
        users: DataFrame [n_users] with columns age, gender, occupation, description (may be empty).
        explicit: whether `rating` holds explicit scores (MAE/RMSE make sense).
        notes: human-readable notes on what the loader skipped or assumed, for reports.
    """

    name: str
    user: np.ndarray
    item: np.ndarray
    rating: np.ndarray
    timestamp: np.ndarray | None
    user_ids: np.ndarray
    item_ids: np.ndarray
    items: pd.DataFrame
    users: pd.DataFrame
    explicit: bool = True
    notes: tuple[str, ...] = ()
    _item_index: pd.Index = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_item_index", pd.Index(self.item_ids))

    # -- sizes --------------------------------------------------------------------------------
    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_interactions(self) -> int:
        return len(self.user)

    @property
    def has_timestamps(self) -> bool:
        return self.timestamp is not None

    # -- id mapping ---------------------------------------------------------------------------
    def item_index(self, original_ids) -> np.ndarray:
        """Original item ids -> item indices; raises UnknownItemError naming the missing ids."""
        ids = list(original_ids)
        idx = self._item_index.get_indexer(ids)
        if (idx < 0).any():
            # ids typed on a command line arrive as strings, ids from a typed dataframe as numbers:
            # retry with the catalog's type
            if self.item_ids.dtype.kind in "iu":
                try:
                    idx = self._item_index.get_indexer([int(i) for i in ids])
                except (TypeError, ValueError):
                    pass
            elif self.item_ids.dtype.kind in "OU":
                idx = self._item_index.get_indexer([str(i) for i in ids])
            missing = [ids[j] for j in np.flatnonzero(idx < 0)]
            if missing:
                raise UnknownItemError(
                    f"{len(missing)} item id(s) not in the {self.name} catalog: {missing[:10]}"
                )
        return idx.astype(np.int64)

    def titles(self, item_idx) -> list[str]:
        return [str(t) for t in self.items["title"].to_numpy()[np.asarray(item_idx)]]

    def fingerprint(self) -> dict:
        """Name, sizes and a hash of the interactions (users, items, times, ratings): what a benchmark's
        progress folder and a trained model record, to tell the same log from one merely named alike."""
        return {"name": self.name, "n_users": int(self.n_users), "n_items": int(self.n_items),
                "hash": array_digest(self.user, self.item, self.timestamp, self.rating)}

    def info(self) -> dict:
        """Summary counts (the `metarec data info` contract)."""
        r = self.rating
        out = {
            "dataset": self.name,
            "n_users": self.n_users,
            "n_items": self.n_items,
            "n_interactions": self.n_interactions,
            "rating_min": float(np.nanmin(r)) if np.isfinite(r).any() else None,  # NaN: unknown ratings
            "rating_max": float(np.nanmax(r)) if np.isfinite(r).any() else None,
            "explicit": self.explicit,
            "has_timestamps": self.has_timestamps,
            "t_min": int(self.timestamp.min()) if self.has_timestamps and r.size else None,
            "t_max": int(self.timestamp.max()) if self.has_timestamps and r.size else None,
            "density": self.n_interactions / max(1, self.n_users * self.n_items),
            "notes": list(self.notes),
        }
        return out


def _first_of_repeats(ratings: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    """`ratings` with each (user, item) pair once: its first interaction (in time, when there are
    times; else in file order). A repeat would put one item in a support set twice, or in both the
    support and the query set; what was dropped goes into `notes` (and the log)."""
    order = (np.argsort(ratings["timestamp"].to_numpy(), kind="stable") if "timestamp" in ratings
             else np.arange(len(ratings)))
    repeat = ratings.iloc[order].duplicated(["user_id", "item_id"], keep="first").to_numpy()
    if not repeat.any():
        return ratings
    drop = np.sort(order[repeat])
    msg = (f"{len(drop)} repeated (user, item) row(s) dropped: each pair keeps its first interaction"
           + (" in time" if "timestamp" in ratings else ""))
    notes.append(msg)
    log.warning(msg)
    return ratings.drop(index=ratings.index[drop]).reset_index(drop=True)


def _objects(values) -> pd.Series:
    """An object column in which None stays None (pandas >= 3 would infer a NaN-holding str dtype)."""
    return pd.Series(list(values), dtype=object)


def build(
    name: str,
    ratings: pd.DataFrame,
    items: pd.DataFrame,
    users: pd.DataFrame | None = None,
    *,
    explicit: bool = True,
    notes: list[str] | None = None,
) -> InteractionData:
    """Assemble InteractionData from loader frames.

    Args:
        ratings: columns user_id, item_id, rating, and optionally timestamp.
        items: column item_id plus any of ITEM_FIELDS; defines the catalog (and its order).
            Items that appear only in `ratings` are appended to the catalog without text.
        users: column user_id plus any of USER_FIELDS, or None.
    """
    notes = list(notes or [])
    ratings = _first_of_repeats(ratings, notes)
    items = items.drop_duplicates("item_id", keep="first").reset_index(drop=True)
    extra = pd.Index(ratings["item_id"].unique()).difference(pd.Index(items["item_id"]))
    if len(extra):
        notes.append(f"{len(extra)} rated item(s) absent from the item file were added without text")
        items = pd.concat([items, pd.DataFrame({"item_id": extra})], ignore_index=True)
    item_index = pd.Index(items["item_id"])
    user_ids = np.sort(ratings["user_id"].unique())
    user_index = pd.Index(user_ids)
    for col in ITEM_FIELDS:
        if col not in items:
            items[col] = None
    # one representation of "missing" (None) whatever the source: NaN, "" or a pandas NA
    for col in ("brand", "description", "features", "director", "cast"):
        items[col] = _objects(v if isinstance(v, str) and v.strip() else None for v in items[col])
    items["year"] = _objects(int(v) if isinstance(v, (int, float, np.integer, np.floating)) and v == v else None
                             for v in items["year"])
    items["genres"] = _objects(tuple(g) if isinstance(g, (list, tuple)) else () for g in items["genres"])
    items["title"] = _objects(t if isinstance(t, str) and t.strip() else str(i)
                              for t, i in zip(items["title"], items["item_id"]))
    if users is None:
        users = pd.DataFrame({"user_id": user_ids})
    users = users.drop_duplicates("user_id").set_index("user_id").reindex(user_ids).reset_index()
    for col in USER_FIELDS:
        if col not in users:
            users[col] = None
        users[col] = _objects(None if v is None or (isinstance(v, float) and v != v) else v for v in users[col])
    ts = ratings["timestamp"].to_numpy(np.int64) if "timestamp" in ratings else None
    return InteractionData(
        name=name,
        user=user_index.get_indexer(ratings["user_id"]).astype(np.int64),
        item=item_index.get_indexer(ratings["item_id"]).astype(np.int64),
        rating=ratings["rating"].to_numpy(np.float32),
        timestamp=ts,
        user_ids=np.asarray(user_ids),
        item_ids=np.asarray(items["item_id"].to_numpy()),
        items=items[["item_id", *ITEM_FIELDS]].reset_index(drop=True),
        users=users[["user_id", *USER_FIELDS]].reset_index(drop=True),
        explicit=explicit,
        notes=tuple(notes),
    )
