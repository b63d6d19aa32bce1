"""Loaders for text-rich logs: Amazon Reviews (2018 and 2023 releases) and ML-100K with IMDb details.

Item text keeps what describes an item (title, description, brand or store, features, director and
cast) and leaves out what is behaviour or outside opinion: Amazon's `also_buy` / `also_view` lists
and IMDb's aggregate `rating` / `num_review` are collaborative signal, which would leak into a
cold-start evaluation through the "text". Long descriptions are cut by the encoder at
`EncoderConfig.max_length` tokens (256 by default).
"""

from __future__ import annotations

import gzip
import html
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from metarec.core.errors import DataFormatError, DatasetNotFoundError
from metarec.data.interactions import InteractionData, build
from metarec.data.loaders import TIME_RANGE, load_ml100k

IMDB_FILE = "movielens100k_details.json"
IMDB_PLACEHOLDER = "It looks like we don't have any"  # IMDb's text where a title has no plot summary


def _json_lines(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line of a JSON Lines file, gzip-compressed or not."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            for n, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    raise DataFormatError(f"not a JSON object: {e.msg} at column {e.colno}", path=path, line=n) from e
                if not isinstance(obj, dict):
                    raise DataFormatError("expected one JSON object per line", path=path, line=n)
                yield n, obj
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise DataFormatError(f"cannot read: {e}", path=path) from e


def _text(v) -> str | None:
    """A field as clean text: lists joined, HTML entities and markup-free whitespace tidied."""
    if isinstance(v, (list, tuple)):
        v = " ".join(str(x) for x in v if isinstance(x, str) and x.strip())
    if not isinstance(v, str):
        return None
    v = " ".join(html.unescape(v).split())
    return v or None


def _amazon_files(root: Path) -> tuple[Path, Path | None]:
    """(reviews file, metadata file or None) in `root`: `meta_*.json[l][.gz]` is the metadata, the
    other JSON Lines file the reviews."""
    if not root.is_dir():
        raise DatasetNotFoundError(f"{root}: data directory not found")
    files = sorted(p for p in root.iterdir() if p.name.endswith((".json", ".json.gz", ".jsonl", ".jsonl.gz")))
    meta = [p for p in files if p.name.startswith("meta_")]
    reviews = [p for p in files if not p.name.startswith("meta_")]
    if len(reviews) != 1 or len(meta) > 1:
        raise DatasetNotFoundError(
            f"{root}: expected one reviews file (e.g. Gift_Cards_5.json.gz, or All_Beauty.jsonl) and at most one "
            f"meta_*.json[l][.gz] file; found reviews {[p.name for p in reviews]}, metadata {[p.name for p in meta]}")
    return reviews[0], (meta[0] if meta else None)


def load_amazon(root: Path) -> InteractionData:
    """Amazon Reviews from `root`: the 2018 release (`reviewerID`, `asin`, `overall`,
    `unixReviewTime`; metadata `asin`, `title`, `description`, `brand`, `feature`) or the 2023 one
    (`user_id`, `parent_asin`, `rating`, `timestamp` in milliseconds; metadata `parent_asin`, `title`,
    `description`, `store`, `features`, `categories`). A review without a user, item, rating or time
    is a DataFormatError naming the file and line."""
    reviews, meta = _amazon_files(root)
    rows, lines = [], []
    for n, r in _json_lines(reviews):
        if "reviewerID" in r:  # 2018
            user, item, rating, t = r.get("reviewerID"), r.get("asin"), r.get("overall"), r.get("unixReviewTime")
        else:  # 2023: milliseconds
            user, item, rating = r.get("user_id"), r.get("parent_asin") or r.get("asin"), r.get("rating")
            t = r.get("timestamp") / 1000 if isinstance(r.get("timestamp"), (int, float)) else None
        for name, v, ok in (("user", user, isinstance(user, str) and user.strip()),
                            ("item", item, isinstance(item, str) and item.strip()),
                            ("rating", rating, isinstance(rating, (int, float)) and np.isfinite(rating)),
                            ("time", t, isinstance(t, (int, float)) and TIME_RANGE[0] <= t <= TIME_RANGE[1])):
            if not ok:
                raise DataFormatError(f"review without a valid {name} (got {v!r})", path=reviews, line=n)
        rows.append((user.strip(), item.strip(), float(rating), int(t)))
        lines.append(n)
    if not rows:
        raise DataFormatError("no reviews in the file", path=reviews, line=1)
    ratings = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    items = pd.DataFrame({"item_id": pd.unique(ratings["item_id"])})
    notes = []
    if meta is not None:
        wanted = set(items["item_id"])
        text = {}
        for _, m in _json_lines(meta):
            asin = m.get("parent_asin") or m.get("asin")
            if asin not in wanted or asin in text:
                continue
            text[asin] = {"title": _text(m.get("title")), "brand": _text(m.get("brand") or m.get("store")),
                          "description": _text(m.get("description")),
                          "features": _text(m.get("feature") or m.get("features")),
                          "genres": tuple(c for c in (m.get("categories") or []) if isinstance(c, str))}
        missing = len(wanted - set(text))
        if missing:
            notes.append(f"{missing} reviewed item(s) have no metadata: they are known by their id alone")
        items = pd.DataFrame([{"item_id": i, **text.get(i, {})} for i in items["item_id"]])
    else:
        notes.append("no meta_* file: items are known by their id alone")
    return build(root.name or "amazon", ratings, items, None, explicit=True, notes=notes)


def _find(candidates: list[Path], what: str) -> Path:
    for p in candidates:
        if p.exists():
            return p
    raise DatasetNotFoundError(f"{what}: looked in {', '.join(str(p) for p in candidates)}")


def load_ml100k_imdb(root: Path) -> InteractionData:
    """ML-100K with IMDb's description, director and cast joined to its items on `movie_id`.

    `root` is the folder holding `ml-100k/` and `ml-100k-imdb/` (as `../shared/data` does), or either
    of them. IMDb's `rating` and `num_review` are left out (outside collaborative signal), genres stay
    `u.item`'s, IMDb's "no plot summary" placeholder is not a description, and a row whose year is more
    than one off the item's (or whose item has no year) is taken for a wrong match and skipped."""
    base = _find([root / "u.data", root / "ml-100k" / "u.data", root.parent / "ml-100k" / "u.data"],
                 "ML-100K's u.data").parent
    details = _find([root / IMDB_FILE, root / "ml-100k-imdb" / IMDB_FILE, root.parent / "ml-100k-imdb" / IMDB_FILE],
                    f"the IMDb details ({IMDB_FILE})")
    data = load_ml100k(base)
    try:
        rows = json.loads(details.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataFormatError(f"not a JSON list: {e}", path=details) from e
    if not isinstance(rows, list):
        raise DataFormatError("expected a JSON list of movies", path=details)
    years = dict(zip(data.items["item_id"].astype(int), data.items["year"]))
    text = {}
    for r in rows:
        if not isinstance(r, dict) or not isinstance(r.get("movie_id"), int):
            continue
        y, own = pd.to_numeric(r.get("year"), errors="coerce"), years.get(r["movie_id"])  # "1995", 1995.0 or junk
        if pd.notna(y) and (own is None or abs(y - own) > 1):
            continue  # matched another IMDb page (a remake, a TV episode): no text is better than the wrong one
        desc = _text(r.get("description"))
        if desc and desc.startswith(IMDB_PLACEHOLDER):
            desc = None
        text[r["movie_id"]] = {"description": desc, "director": _text(", ".join(r.get("director") or [])),
                               "cast": _text(", ".join((r.get("cast") or [])[:3]))}
    items = data.items.copy()
    found = [text.get(int(i), {}) for i in items["item_id"]]
    for field in ("description", "director", "cast"):
        items[field] = pd.Series([f.get(field) for f in found], dtype=object)
    described = [any(f.values()) or None for f in found]
    ratings = pd.DataFrame({"user_id": data.user_ids[data.user], "item_id": data.item_ids[data.item],
                            "rating": data.rating, "timestamp": data.timestamp})
    users = data.users.copy()
    n = sum(d is not None for d in described)
    return build("ml-100k-imdb", ratings, items, users, explicit=True,
                 notes=[*data.notes, f"{n} of {len(items)} items have an IMDb description, director or cast"])
