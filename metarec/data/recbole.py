"""RecBole's atomic files in and out: `<name>.inter`, `<name>.item` and `<name>.user`, tab-separated,
each header cell `field:type` (type one of token, token_seq, float, float_seq).

Reading maps RecBole's usual field names onto metarec's: `user_id`, `item_id`, `rating`,
`timestamp`; on items a title-like field (`title`, `movie_title`, `item_name`...), a year-like one,
`genre` / `categories` / `class` (token_seq, space-separated) and a description-like one; on users
`age`, `gender`, `occupation`. So RecBole's many prepared datasets run under metarec's protocol.
Writing gives a folder RecBole reads back.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from metarec.core.errors import DataFormatError, DatasetNotFoundError
from metarec.data.interactions import InteractionData, build
from metarec.data.loaders import CsvConfig, read_interactions, read_frame
from metarec.data.readers import line_of

TITLE_FIELDS = ("title", "movie_title", "item_name", "name", "book_title")
YEAR_FIELDS = ("year", "release_year", "publication_year")
GENRE_FIELDS = ("genre", "genres", "categories", "category", "class")
TEXT_FIELDS = ("description", "desc", "plot", "summary", "overview")


def _atomic(root: Path, suffix: str) -> Path | None:
    """`root/<root.name><suffix>`, else the only `*<suffix>` in `root`, else None."""
    own = root / f"{root.name}{suffix}"
    if own.is_file():
        return own
    found = sorted(root.glob(f"*{suffix}"))
    if len(found) > 1:
        raise DatasetNotFoundError(f"{root}: several {suffix} files ({[p.name for p in found]}); name one {own.name}")
    return found[0] if found else None


def _header(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """({field: type}, {field: header cell}) from an atomic file's first line."""
    with open(path, encoding="utf-8", errors="replace") as f:
        cells = f.readline().rstrip("\r\n").split("\t")
    fields, raw = {}, {}
    for c in cells:
        name, _, kind = c.partition(":")
        if kind not in ("token", "token_seq", "float", "float_seq"):
            raise DataFormatError(f"header cell {c!r}: expected field:type with type token, token_seq, float or "
                                  "float_seq", path=path, line=1)
        fields[name], raw[name] = kind, c
    return fields, raw


def _first(fields: dict, names: tuple[str, ...]) -> str | None:
    return next((n for n in names if n in fields), None)


def load_recbole(root: Path) -> InteractionData:
    """A RecBole atomic-file folder: `.inter` (user_id, item_id, optionally rating and timestamp),
    optionally `.item` and `.user` (see the module docstring for the fields read)."""
    inter = _atomic(root, ".inter")
    if inter is None:
        raise DatasetNotFoundError(f"{root}: no .inter file (RecBole atomic files: <name>.inter, .item, .user)")
    fields, raw = _header(inter)
    for need in ("user_id", "item_id"):
        if need not in fields:
            raise DataFormatError(f"no {need} field; found {list(fields)}", path=inter, line=1)
    cfg = CsvConfig(sep="\t", quoted=False, user_col=raw["user_id"], item_col=raw["item_id"],
                    rating_col=raw.get("rating"), time_col=raw.get("timestamp"), items=None)
    ratings = read_interactions(inter, cfg)
    explicit = ratings.attrs["explicit"]
    ratings.attrs.clear()
    notes = []
    items = pd.DataFrame({"item_id": pd.unique(ratings["item_id"])})
    item_file = _atomic(root, ".item")
    if item_file is not None:
        items = _items(item_file)
    users = None
    user_file = _atomic(root, ".user")
    if user_file is not None:
        users = _users(user_file)
    if "rating" not in fields:
        notes.append("no rating field: implicit feedback")
    return build(root.name or "recbole", ratings, items, users, explicit=explicit, notes=notes)


def _items(path: Path) -> pd.DataFrame:
    fields, raw = _header(path)
    if "item_id" not in fields:
        raise DataFormatError(f"no item_id field; found {list(fields)}", path=path, line=1)
    df = read_frame(path, CsvConfig(sep="\t", quoted=False))
    ids = df[raw["item_id"]].str.strip()
    twice = ids.duplicated().to_numpy()
    if twice.any():
        row = int(np.flatnonzero(twice)[0])
        raise DataFormatError(f"item {ids.iloc[row]!r} is listed twice", path=path, line=line_of(df, row))
    out = pd.DataFrame({"item_id": ids})
    title, year = _first(fields, TITLE_FIELDS), _first(fields, YEAR_FIELDS)
    genre, text = _first(fields, GENRE_FIELDS), _first(fields, TEXT_FIELDS)
    if title:
        out["title"] = [t.strip() or None for t in df[raw[title]]]
    if year:
        yr = pd.to_numeric(df[raw[year]], errors="coerce")
        out["year"] = [int(y) if pd.notna(y) and float(y).is_integer() else None for y in yr]
    if genre:
        out["genres"] = [tuple(g for g in s.split() if g) if fields[genre] == "token_seq" else ((s.strip(),) if s.strip()
                         else ()) for s in df[raw[genre]]]
    if text:
        out["description"] = [t.strip() or None for t in df[raw[text]]]
    return out


def _users(path: Path) -> pd.DataFrame | None:
    fields, raw = _header(path)
    if "user_id" not in fields:
        raise DataFormatError(f"no user_id field; found {list(fields)}", path=path, line=1)
    df = read_frame(path, CsvConfig(sep="\t", quoted=False))
    out = pd.DataFrame({"user_id": df[raw["user_id"]].str.strip()})
    if "age" in fields:
        out["age"] = pd.to_numeric(df[raw["age"]], errors="coerce")
    for f in ("gender", "occupation"):
        if f in fields:
            out[f] = [v.strip() or None for v in df[raw[f]]]
    return out.drop_duplicates("user_id")


def write_recbole(data: InteractionData, out: str | Path) -> Path:
    """Write `data` as RecBole atomic files in `out/<data.name>/`: `.inter` always, `.item` with the
    text fields, `.user` when any user has a field. Returns the folder."""
    folder = Path(out) / data.name
    folder.mkdir(parents=True, exist_ok=True)
    inter = pd.DataFrame({"user_id:token": data.user_ids[data.user], "item_id:token": data.item_ids[data.item]})
    if data.explicit:
        inter["rating:float"] = data.rating
    if data.timestamp is not None:
        inter["timestamp:float"] = data.timestamp
    _write(inter, folder / f"{data.name}.inter")
    items = data.items
    _write(pd.DataFrame({
        "item_id:token": items["item_id"],
        "title:token_seq": [_one_line(t) for t in items["title"]],
        "year:token": ["" if y is None else str(int(y)) for y in items["year"]],
        "genre:token_seq": [" ".join(g.replace(" ", "_") for g in gs) for gs in items["genres"]],
        "description:token_seq": [_one_line(d) for d in items["description"]],
    }), folder / f"{data.name}.item")
    users = data.users
    if users[["age", "gender", "occupation"]].notna().any().any():
        _write(pd.DataFrame({
            "user_id:token": users["user_id"],
            "age:float": ["" if a is None or a != a else a for a in users["age"]],
            "gender:token": [g or "" for g in users["gender"]],
            "occupation:token": [(o or "").replace(" ", "_") for o in users["occupation"]],
        }), folder / f"{data.name}.user")
    return folder


def _one_line(v) -> str:
    """Text that fits in one tab-separated cell."""
    return "" if v is None else " ".join(str(v).split())


def _write(df: pd.DataFrame, path: Path) -> None:
    from metarec.core.config import atomic_write_text

    buf = io.StringIO()
    df.to_csv(buf, sep="\t", index=False, lineterminator="\n", quoting=3)  # QUOTE_NONE: RecBole reads raw cells
    atomic_write_text(path, buf.getvalue())
