"""Dataset loaders: one reader per file family, each returning InteractionData.

A dataset directory is `--data-dir` if given (the folder itself, or a parent holding `<name>/`),
else `$METAREC_DATA_DIR/<name>`, else the user cache; a missing MovieLens release is downloaded and
its sha256 verified. Every bad line raises DataFormatError naming the file and line.
"""

from __future__ import annotations

import importlib
import logging
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from metarec.core.errors import ConfigError, DataFormatError, DatasetNotFoundError
from metarec.data.download import RELEASES, default_data_root, download_release
from metarec.data.interactions import InteractionData, build
from metarec.data.readers import line_of, read_csv_records, read_table, to_numeric

log = logging.getLogger(__name__)

ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
    "Thriller", "War", "Western",
)
ML1M_AGES = {1: "Under 18", 18: "18-24", 25: "25-34", 35: "35-44", 45: "45-49", 50: "50-55", 56: "56+"}
ML1M_AGE_MID = {1: 16, 18: 21, 25: 30, 35: 40, 45: 47, 50: 53, 56: 60}
ML1M_OCCUPATIONS = (
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student",
    "customer service", "doctor/health care", "executive/managerial", "farmer", "homemaker",
    "K-12 student", "lawyer", "programmer", "retired", "sales/marketing", "scientist",
    "self-employed", "technician/engineer", "tradesman/craftsman", "unemployed", "writer",
)
_YEAR_IN_TITLE = re.compile(r"\((\d{4})\)\s*$")


def _year_from_title(titles: pd.Series) -> list[int | None]:
    out = []
    for t in titles:
        m = _YEAR_IN_TITLE.search(t or "")
        out.append(int(m.group(1)) if m else None)
    return out


def _check_ratings(ratings: np.ndarray, lo: float, hi: float, path: Path, df: pd.DataFrame,
                   header: bool = False) -> None:
    bad = ~((ratings >= lo) & (ratings <= hi))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        line = int(df.attrs["line"][row]) if "line" in df.attrs else row + 1 + int(header)
        raise DataFormatError(
            f"rating {ratings[row]:g} outside the expected range [{lo:g}, {hi:g}]", path=path, line=line
        )


def _integer_ratings(path: Path, sep: str) -> pd.DataFrame:
    """Headerless `user item rating timestamp` rows, all integers, ratings 1-5 (ML-100K, ML-1M)."""
    df = read_table(path, sep=sep, names=["user_id", "item_id", "rating", "timestamp"], encoding="latin-1")
    ratings = pd.DataFrame({c: to_numeric(df, c, path) for c in df.columns})
    _check_ratings(ratings["rating"].to_numpy(), 1, 5, path, df)
    _check_times(ratings["timestamp"].to_numpy(), df, "timestamp", path)
    return ratings


# -- MovieLens 100K -------------------------------------------------------------------------------
def load_ml100k(root: Path) -> InteractionData:
    """MovieLens 100K from `root` (u.data, u.item, optionally u.user)."""
    ratings = _integer_ratings(root / "u.data", "\t")
    pi = root / "u.item"
    names = ["item_id", "title", "release_date", "video_date", "url", *ML100K_GENRES]
    it = read_table(pi, sep="|", names=names, encoding="latin-1")
    flags = np.stack([to_numeric(it, g, pi) for g in ML100K_GENRES], axis=1)
    if not np.isin(flags, (0, 1)).all():
        row = int(np.flatnonzero(~np.isin(flags, (0, 1)).all(axis=1))[0])
        raise DataFormatError("genre flags must be 0 or 1", path=pi, line=int(it.attrs["line"][row]))
    dates = pd.to_datetime(it["release_date"], format="%d-%b-%Y", errors="coerce")
    items = pd.DataFrame({
        "item_id": to_numeric(it, "item_id", pi),
        "title": it["title"],
        "year": [int(d.year) if pd.notna(d) else None for d in dates],
        "genres": [tuple(g for g, f in zip(ML100K_GENRES, row) if f and g != "unknown") for row in flags],
    })
    users = None
    pu = root / "u.user"
    if pu.exists():
        u = read_table(pu, sep="|", names=["user_id", "age", "gender", "occupation", "zip"], encoding="latin-1")
        users = pd.DataFrame({
            "user_id": to_numeric(u, "user_id", pu), "age": to_numeric(u, "age", pu),
            "gender": u["gender"].map({"M": "male", "F": "female"}), "occupation": u["occupation"],
        })
    return build("ml-100k", ratings, items, users)


# -- MovieLens 1M ---------------------------------------------------------------------------------
def load_ml1m(root: Path) -> InteractionData:
    """MovieLens 1M from `root` (ratings.dat, movies.dat, optionally users.dat)."""
    ratings = _integer_ratings(root / "ratings.dat", "::")
    pm = root / "movies.dat"
    mv = read_table(pm, sep="::", names=["item_id", "title", "genres"], encoding="latin-1")
    items = pd.DataFrame({
        "item_id": to_numeric(mv, "item_id", pm), "title": mv["title"],
        "year": _year_from_title(mv["title"]),
        "genres": [tuple(g for g in s.split("|") if g and g != "(no genres listed)") for s in mv["genres"]],
    })
    users = None
    pu = root / "users.dat"
    if pu.exists():
        u = read_table(pu, sep="::", names=["user_id", "gender", "age", "occupation", "zip"], encoding="latin-1")
        age = to_numeric(u, "age", pu)
        occ = to_numeric(u, "occupation", pu)
        if not np.isin(age, list(ML1M_AGES)).all():
            row = int(np.flatnonzero(~np.isin(age, list(ML1M_AGES)))[0])
            raise DataFormatError(f"age code {age[row]} is not one of {sorted(ML1M_AGES)}",
                                  path=pu, line=int(u.attrs["line"][row]))
        if ((occ < 0) | (occ >= len(ML1M_OCCUPATIONS))).any():
            row = int(np.flatnonzero((occ < 0) | (occ >= len(ML1M_OCCUPATIONS)))[0])
            raise DataFormatError(f"occupation code {occ[row]} is not in 0..20", path=pu,
                                  line=int(u.attrs["line"][row]))
        users = pd.DataFrame({
            "user_id": to_numeric(u, "user_id", pu), "age": [ML1M_AGE_MID[a] for a in age],
            "gender": u["gender"].map({"M": "male", "F": "female"}),
            "occupation": [ML1M_OCCUPATIONS[o] for o in occ],
        })
    return build("ml-1m", ratings, items, users)


# -- MovieLens "latest" family (ml-20m, ml-25m, ml-32m, ml-latest-small) --------------------------
def load_ml_latest(root: Path, name: str) -> InteractionData:
    """A MovieLens "latest"-format release (ratings.csv, movies.csv) from `root`, named `name`."""
    p = root / "ratings.csv"
    df = read_table(p, sep=",", names=["user_id", "item_id", "rating", "timestamp"], encoding="utf-8",
                    header=True)
    ratings = pd.DataFrame({
        "user_id": to_numeric(df, "user_id", p, header=True),
        "item_id": to_numeric(df, "item_id", p, header=True),
        "rating": to_numeric(df, "rating", p, kind="float", header=True),
        "timestamp": to_numeric(df, "timestamp", p, header=True),
    })
    _check_ratings(ratings["rating"].to_numpy(), 0.5, 5, p, df, header=True)
    _check_times(ratings["timestamp"].to_numpy(), df, "timestamp", p)
    pm = root / "movies.csv"
    mv = read_table(pm, sep=",", names=["item_id", "title", "genres"], encoding="utf-8", header=True,
                    quoted=True)
    items = pd.DataFrame({
        "item_id": to_numeric(mv, "item_id", pm, header=True), "title": mv["title"].str.strip(),
        "year": _year_from_title(mv["title"].str.strip()),
        "genres": [tuple(g for g in s.split("|") if g and g != "(no genres listed)") for s in mv["genres"]],
    })
    return build(name, ratings, items, None)


# -- Book-Crossing --------------------------------------------------------------------------------
def load_book_crossing(root: Path) -> InteractionData:
    """Book-Crossing (Ziegler et al. 2005): no timestamps; rating 0 = implicit interaction."""
    p = root / "BX-Book-Ratings.csv"
    df = read_table(p, sep=";", names=["user_id", "item_id", "rating"], encoding="latin-1", header=True,
                    quoted=True)
    r = to_numeric(df, "rating", p, header=True)
    _check_ratings(r.astype(float), 0, 10, p, df, header=True)
    ratings = pd.DataFrame({
        "user_id": to_numeric(df, "user_id", p, header=True),
        "item_id": df["item_id"].str.strip().str.upper(),
        # 0 means "interacted, no score": kept as an interaction with an unknown (NaN) rating
        "rating": np.where(r == 0, np.nan, r).astype(np.float32),
    })
    dup = ratings.duplicated(["user_id", "item_id"])
    notes = []
    if dup.any():
        notes.append(f"{int(dup.sum())} duplicate (user, ISBN) rows skipped (first kept)")
        ratings = ratings[~dup]
    pb = root / "BX-Books.csv"
    cols = ["item_id", "title", "author", "year", "publisher", "img_s", "img_m", "img_l"]
    bk = read_table(pb, sep=";", names=cols, encoding="latin-1", header=True, quoted=True)
    year = pd.to_numeric(bk["year"], errors="coerce")
    items = pd.DataFrame({
        "item_id": bk["item_id"].str.strip().str.upper(), "title": bk["title"],
        "year": [int(y) if pd.notna(y) and 0 < y <= 2100 else None for y in year],
        "description": [f"By {a}. Published by {pb_}." if a else None
                        for a, pb_ in zip(bk["author"], bk["publisher"])],
    })
    users = None
    pu = root / "BX-Users.csv"
    if pu.exists():
        u = read_table(pu, sep=";", names=["user_id", "location", "age"], encoding="latin-1", header=True,
                       quoted=True)
        age = pd.to_numeric(u["age"], errors="coerce")
        users = pd.DataFrame({
            "user_id": to_numeric(u, "user_id", pu, header=True),
            "age": [int(a) if pd.notna(a) and 5 <= a <= 100 else None for a in age],
            "description": [f"Lives in {loc}." if loc else None for loc in u["location"]],
        })
    data = build("book-crossing", ratings, items, users, explicit=True, notes=notes)
    return data


# -- generic CSV / Parquet -------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class CsvConfig:
    """Where the columns of a generic interactions file are (the `csv` dataset)."""

    interactions: str = "interactions.csv"
    items: str | None = "items.csv"
    sep: str = ","
    user_col: str = "user_id"
    item_col: str = "item_id"
    rating_col: str | None = "rating"
    time_col: str | None = "timestamp"
    title_col: str = "title"
    text_col: str | None = "description"
    genres_col: str | None = "genres"
    genres_sep: str = "|"
    encoding: str = "utf-8"
    quoted: bool = True  # fields may be double-quoted (False: '"' is an ordinary character)


def read_frame(path: Path, cfg: CsvConfig) -> pd.DataFrame:
    """A CSV file (strings, empty fields as "", `attrs["line"]` the line of each row) or a Parquet file
    as it is (`attrs["line"]` None); an empty file or a malformed line is a DataFormatError naming it."""
    if not path.is_file():
        raise DatasetNotFoundError(f"{path}: file not found")
    if path.suffix != ".parquet":
        return read_csv_records(path, sep=cfg.sep, encoding=cfg.encoding, quoted=cfg.quoted)
    import pyarrow

    try:
        df = pd.read_parquet(path)
    except (pyarrow.ArrowException, OSError, ValueError) as e:
        raise DataFormatError(f"not a readable Parquet file: {e}", path=path) from e
    df.attrs["line"] = None
    return df


def _where(df: pd.DataFrame, row: int) -> str:
    """"" for a CSV frame (the error names the line), "row N: " for Parquet (which has no lines)."""
    return "" if line_of(df, row) is not None else f"row {row + 1}: "


def _ids(df: pd.DataFrame, column: str, path: Path) -> pd.Series:
    """An id column as stripped strings; an empty id is a DataFormatError naming the line."""
    ids = df[column].astype(str).str.strip()
    empty = (df[column].isna() | (ids == "")).to_numpy()
    if empty.any():
        row = int(np.flatnonzero(empty)[0])
        raise DataFormatError(f"{_where(df, row)}column {column!r}: expected an id, the field is empty",
                              path=path, line=line_of(df, row))
    return ids


def read_interactions(path: Path, cfg: CsvConfig | None = None, *, optional_ratings: bool = False) -> pd.DataFrame:
    """An interactions file (CSV or Parquet, columns named by `cfg`) as a frame of `user_id`,
    `item_id` (strings), `rating` (float; 1.0 without a rating column) and, when the file has times,
    `timestamp` (int unix seconds; ISO dates are converted). A bad value (an empty id, a rating that
    is not a finite number, a time that is neither unix seconds nor a date) is a DataFormatError
    naming the file and line. `optional_ratings`: an empty rating (or no rating column) is NaN,
    unknown, rather than an error (or 1.0).

    `attrs["path"]` names the file and `attrs["line"]` the line of each row (None for Parquet), so
    later checks can point at the line too."""
    cfg = cfg or CsvConfig()
    p = Path(path)
    df = read_frame(p, cfg)
    need = [c for c in (cfg.user_col, cfg.item_col, cfg.rating_col, cfg.time_col) if c]
    missing = [c for c in need if c not in df.columns]
    if missing and not (missing == [cfg.rating_col] or missing == [cfg.time_col]
                        or set(missing) == {cfg.rating_col, cfg.time_col}):
        raise DataFormatError(f"missing column(s) {missing}; found {list(df.columns)}", path=p, line=1)
    ratings = pd.DataFrame({"user_id": _ids(df, cfg.user_col, p), "item_id": _ids(df, cfg.item_col, p)})
    explicit = bool(cfg.rating_col and cfg.rating_col in df.columns)
    ratings["rating"] = (to_numeric(df, cfg.rating_col, p, kind="float", header=True, allow_empty=optional_ratings)
                         if explicit else np.nan if optional_ratings else 1.0)
    if cfg.time_col and cfg.time_col in df.columns:
        ratings["timestamp"] = _unix_seconds(df, cfg.time_col, p)
    ratings.attrs.update(path=str(p), line=df.attrs["line"], explicit=explicit)
    return ratings


# unix seconds a time may take: the years 1000 to 9999, which every date library can show; a time
# beyond them is a unit mistake (milliseconds, nanoseconds) or a corrupt value
TIME_RANGE = (-30_610_224_000, 253_402_300_799)


def _check_times(t: np.ndarray, df: pd.DataFrame, name: str, p: Path) -> np.ndarray:
    """`t` (unix seconds as read from `df[name]`) when every time is finite and within TIME_RANGE;
    else a DataFormatError naming the first bad one's line."""
    ok = np.isfinite(t) & (t >= TIME_RANGE[0]) & (t <= TIME_RANGE[1])
    if not ok.all():
        row = int(np.flatnonzero(~ok)[0])
        raise DataFormatError(f"{_where(df, row)}column {name!r}: expected unix seconds between {TIME_RANGE[0]} and "
                              f"{TIME_RANGE[1]} (the years 1000-9999), got {str(df[name].iloc[row]).strip()!r}"
                              + (" (milliseconds? divide by 1000)" if np.isfinite(t[row]) else ""),
                              path=p, line=line_of(df, row))
    return t


def _unix_seconds(df: pd.DataFrame, name: str, p: Path) -> np.ndarray:
    """int64 unix seconds from a column of unix seconds or of dates (one form throughout)."""
    col = df[name].astype(str).str.strip()
    num = pd.to_numeric(col, errors="coerce")
    if num.notna().all():
        return _check_times(num.to_numpy(np.float64), df, name, p).astype(np.int64)
    with warnings.catch_warnings():
        # pandas guesses one format from the first dates and turns every date written otherwise
        # into NaT (or, when it cannot guess, warns and parses one by one); dates that the guess
        # missed are parsed again one by one, so "2024-01-01" beside "2024-01-02 10:30" both load
        warnings.filterwarnings("ignore", message="Could not infer format", category=UserWarning)
        ts = pd.to_datetime(col, errors="coerce", utc=True)
        again = (ts.isna() & num.isna()).to_numpy()
        if again.any():
            ts[again] = pd.to_datetime(col[again], errors="coerce", utc=True, format="mixed")
    bad = (ts.isna() & num.isna()).to_numpy()  # neither a number nor a date
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataFormatError(f"{_where(df, row)}column {name!r}: expected unix seconds or a date, "
                              f"got {col.iloc[row]!r}", path=p, line=line_of(df, row))
    if ts.isna().any():
        row = int(np.flatnonzero(ts.isna().to_numpy())[0])
        raise DataFormatError(f"{_where(df, row)}column {name!r}: mixes unix seconds ({col.iloc[row]!r}) with "
                              "dates; write every time in one form", path=p, line=line_of(df, row))
    # whole seconds whatever pandas' resolution (microseconds in pandas 3, nanoseconds before):
    # numpy's datetime64[s] holds every year, where nanoseconds end in 1677 and 2262
    secs = ts.dt.tz_convert(None).to_numpy().astype("datetime64[s]").astype(np.int64)
    return _check_times(secs.astype(np.float64), df, name, p).astype(np.int64)


def load_csv(root: Path, cfg: CsvConfig | None = None) -> InteractionData:
    """A generic log from `root`: the interactions file and, if present, the item file named by `cfg`."""
    cfg = cfg or CsvConfig()
    ratings = read_interactions(root / cfg.interactions, cfg)
    if not len(ratings):
        raise DataFormatError("no interactions: the file has a header but no rows", path=ratings.attrs["path"],
                              line=2)
    explicit = ratings.attrs["explicit"]
    ratings.attrs.clear()
    items = pd.DataFrame({"item_id": pd.unique(ratings["item_id"])})
    notes: list[str] = []
    if cfg.items:
        pi = root / cfg.items
        if pi.exists():
            items, notes = _read_items(pi, cfg)
    return build(root.name or "csv", ratings, items, None, explicit=explicit, notes=notes)


def _read_items(pi: Path, cfg: CsvConfig) -> tuple[pd.DataFrame, list[str]]:
    """The item file's catalog (item_id and the text fields) and notes on what it lacks. An item
    listed twice, an empty id, or a file with no text column at all is a DataFormatError."""
    it = read_frame(pi, cfg)
    if cfg.item_col not in it.columns:
        raise DataFormatError(f"missing column {cfg.item_col!r}; found {list(it.columns)}", path=pi, line=1)
    ids = _ids(it, cfg.item_col, pi)
    twice = ids.duplicated().to_numpy()
    if twice.any():
        row = int(np.flatnonzero(twice)[0])
        first = int(np.flatnonzero((ids == ids.iloc[row]).to_numpy())[0])
        at = (f"lines {line_of(it, first)} and {line_of(it, row)}" if line_of(it, row) is not None
              else f"rows {first + 1} and {row + 1}")
        raise DataFormatError(f"item {ids.iloc[row]!r} is listed twice ({at}); list each item once",
                              path=pi, line=line_of(it, row))
    text_cols = [c for c in (cfg.title_col, cfg.text_col, cfg.genres_col) if c and c in it.columns]
    if not text_cols:
        raise DataFormatError(f"no item text: expected a column {cfg.title_col!r} (or {cfg.text_col!r}, "
                              f"{cfg.genres_col!r}); found {list(it.columns)}", path=pi, line=1)
    notes = [] if cfg.title_col in it.columns else [f"{pi.name} has no {cfg.title_col!r} column: items are "
                                                    "shown by their id"]
    items = pd.DataFrame({"item_id": ids})
    items["title"] = it[cfg.title_col] if cfg.title_col in it.columns else None
    if cfg.text_col and cfg.text_col in it.columns:
        items["description"] = [t if isinstance(t, str) and t else None for t in it[cfg.text_col]]
    if cfg.genres_col and cfg.genres_col in it.columns:
        items["genres"] = [tuple(g for g in str(s).split(cfg.genres_sep) if g) if isinstance(s, str) else ()
                           for s in it[cfg.genres_col]]
    if "year" in it.columns:
        # "1995" from CSV text, 1995.0 from a parquet float column with gaps: both are years
        yr = pd.to_numeric(it["year"], errors="coerce")
        items["year"] = [int(y) if pd.notna(y) and float(y).is_integer() and abs(y) < 10_000 else None for y in yr]
    return items, notes


# -- registry and directory resolution ------------------------------------------------------------
LOADERS: dict[str, tuple[Callable[[Path], InteractionData], tuple[str, ...]]] = {
    "ml-100k": (load_ml100k, ("u.data", "u.item")),
    "ml-1m": (load_ml1m, ("ratings.dat", "movies.dat")),
    "book-crossing": (load_book_crossing, ("BX-Book-Ratings.csv", "BX-Books.csv")),
}
for _n in ("ml-20m", "ml-25m", "ml-32m", "ml-latest", "ml-latest-small"):
    LOADERS[_n] = ((lambda r, n=_n: load_ml_latest(r, n)), ("ratings.csv", "movies.csv"))


def _lazy(module: str, function: str) -> Callable[[Path], InteractionData]:
    """A loader imported when first used (those modules import this one)."""
    def load(root: Path) -> InteractionData:
        return getattr(importlib.import_module(module), function)(root)
    return load


LOADERS["amazon"] = (_lazy("metarec.data.text_logs", "load_amazon"), ())
LOADERS["ml-100k-imdb"] = (_lazy("metarec.data.text_logs", "load_ml100k_imdb"), ())
LOADERS["recbole"] = (_lazy("metarec.data.recbole", "load_recbole"), ())


def dataset_names() -> list[str]:
    """Every dataset name `load_dataset` knows, sorted."""
    return sorted([*LOADERS, "csv"])


def resolve_data_dir(name: str, data_dir: str | Path | None, *, download: bool = True) -> Path:
    """Find the folder holding `name`'s files (see the module docstring for the search order)."""
    required = LOADERS[name][1] if name in LOADERS else ()
    if data_dir is not None:
        p = Path(data_dir).expanduser()
        if required and not all((p / f).exists() for f in required) and (p / name).is_dir():
            p = p / name
        if not p.is_dir():
            raise DatasetNotFoundError(f"{p}: data directory not found")
        return p
    p = default_data_root() / name
    if p.is_dir():
        return p
    if download and name in RELEASES:
        return download_release(name)
    raise DatasetNotFoundError(
        f"{name}: no local copy at {p}; pass --data-dir DIR or set METAREC_DATA_DIR"
        + ("" if name in RELEASES else " (no verified download is known for this dataset)")
    )


def load_dataset(name: str, data_dir: str | Path | None = None, *, download: bool = True,
                 csv: CsvConfig | None = None) -> InteractionData:
    """Load dataset `name` (see `dataset_names()`) from a local folder or the verified cache."""
    if name != "csv" and name not in LOADERS:
        raise ConfigError(f"unknown dataset {name!r}; known: {', '.join(dataset_names())}")
    root = resolve_data_dir(name, data_dir, download=download)
    if name == "csv":
        return load_csv(root, csv)
    loader, required = LOADERS[name]
    missing = [f for f in required if not (root / f).exists()]
    if missing:
        raise DatasetNotFoundError(f"{root}: missing {', '.join(missing)} for dataset {name}")
    data = loader(root)
    log.info("loaded %s: %d users, %d items, %d interactions", name, data.n_users, data.n_items,
             data.n_interactions)
    return data
