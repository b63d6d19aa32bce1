"""Every loader on fixture files: good files, malformed lines, wrong separators, bad encodings."""

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from metarec.core.errors import ConfigError, DataFormatError, DatasetNotFoundError, UnknownItemError
from metarec.data import load_dataset
from metarec.data.loaders import CsvConfig
from tests.fixtures import write_ml100k


def test_ml100k_fixture_roundtrip(tmp_path):
    root = write_ml100k(tmp_path / "ml-100k")
    d = load_dataset("ml-100k", root)
    assert (d.n_users, d.n_items, d.n_interactions) == (30, 40, 240)
    i3 = d.item_index([3])[0]
    assert d.items["title"][i3] == "Misérables, Les (1995)"
    assert d.items["year"][i3] == 1953
    assert d.users["gender"].isin(["male", "female"]).all()
    # original ids round-trip through the contiguous mapping
    raw = pd.read_csv(root / "u.data", sep="\t", header=None)
    assert sorted(zip(d.user_ids[d.user], d.item_ids[d.item])) == sorted(zip(raw[0], raw[1]))


def test_data_dir_may_be_the_parent_folder(tmp_path):
    write_ml100k(tmp_path / "ml-100k")
    assert load_dataset("ml-100k", tmp_path).n_users == 30


def test_env_var_locates_data(tmp_path, monkeypatch):
    write_ml100k(tmp_path / "ml-100k")
    monkeypatch.setenv("METAREC_DATA_DIR", str(tmp_path))
    assert load_dataset("ml-100k", download=False).n_items == 40


def test_missing_dir_and_unknown_dataset(tmp_path, monkeypatch):
    monkeypatch.setenv("METAREC_DATA_DIR", str(tmp_path))
    with pytest.raises(DatasetNotFoundError, match="data-dir"):
        load_dataset("ml-100k", download=False)
    with pytest.raises(ConfigError, match="unknown dataset"):
        load_dataset("nope", tmp_path)


def _replace_line(path, index: int, text: str) -> None:
    """Line `index` (0-based) of the fixture file at `path` replaced by `text`."""
    lines = path.read_text().splitlines()
    lines[index] = text
    path.write_text("\n".join(lines) + "\n")


def test_malformed_line_names_file_and_line(tmp_path):
    root = write_ml100k(tmp_path / "ml-100k")
    _replace_line(root / "u.data", 6, "1\t2\t3")  # a missing field on line 7
    with pytest.raises(DataFormatError) as e:
        load_dataset("ml-100k", root)
    assert e.value.line == 7 and e.value.path.name == "u.data"
    assert "expected 4 fields" in str(e.value) and "u.data, line 7" in str(e.value)


def test_non_numeric_value_names_line(tmp_path):
    root = write_ml100k(tmp_path / "ml-100k")
    _replace_line(root / "u.data", 11, "5\tabc\t3\t881000000")
    with pytest.raises(DataFormatError, match=r"line 12.*item_id.*'abc'"):
        load_dataset("ml-100k", root)


def test_out_of_range_rating(tmp_path):
    root = write_ml100k(tmp_path / "ml-100k")
    _replace_line(root / "u.data", 0, "1\t1\t9\t881000000")
    with pytest.raises(DataFormatError, match=r"line 1: rating 9"):
        load_dataset("ml-100k", root)


def test_wrong_separator(tmp_path):
    root = write_ml100k(tmp_path / "ml-100k")
    (root / "u.data").write_text((root / "u.data").read_text().replace("\t", ","))
    with pytest.raises(DataFormatError, match=r"line 1: expected 4 fields separated by '\\t'"):
        load_dataset("ml-100k", root)


def test_latin1_line_with_x85_stays_one_line(tmp_path):
    # \x85 is "…" in latin-1/cp1252 and a line break for str.splitlines: it must not split a row
    root = write_ml100k(tmp_path / "ml-100k")
    raw = (root / "u.item").read_bytes().replace(b"Movie 5 (", b"Movie\x85 5 (")
    (root / "u.item").write_bytes(raw)
    d = load_dataset("ml-100k", root)
    assert "Movie\x85 5" in d.items["title"][d.item_index([5])[0]]


def _write_ml1m(root: Path, ratings: str | None = None):
    root.mkdir(parents=True, exist_ok=True)
    (root / "ratings.dat").write_text(ratings or "1::10::5::978300760\n1::20::3::978302109\n2::10::4::978301968\n")
    (root / "movies.dat").write_bytes(
        "10::Toy Story (1995)::Animation|Children's|Comedy\n20::Misérables, Les (1995)::Drama\n".encode("latin-1"))
    (root / "users.dat").write_text("1::F::1::10::48067\n2::M::56::16::70072\n")
    return root


def test_ml1m(tmp_path):
    d = load_dataset("ml-1m", _write_ml1m(tmp_path / "ml-1m"))
    assert (d.n_users, d.n_items, d.n_interactions) == (2, 2, 3)
    assert d.items["genres"][0] == ("Animation", "Children's", "Comedy")
    assert d.items["title"][1] == "Misérables, Les (1995)" and d.items["year"][1] == 1995
    assert d.users["occupation"].tolist() == ["K-12 student", "self-employed"]


def test_ml1m_bad_line(tmp_path):
    root = _write_ml1m(tmp_path / "ml-1m", "1::10::5::978300760\n1::20::3\n")
    with pytest.raises(DataFormatError, match=r"ratings.dat, line 2: expected 4 fields separated by '::'"):
        load_dataset("ml-1m", root)


def _write_latest(root: Path, movies: bytes | None = None):
    root.mkdir(parents=True, exist_ok=True)
    (root / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,2,3.5,964981247\n7,2,0.5,964982224\n")
    (root / "movies.csv").write_bytes(movies or (
        'movieId,title,genres\n1,"American President, The (1995)",Comedy|Drama|Romance\n'
        '2,Amélie (2001),(no genres listed)\n'.encode("utf-8")))
    return root


def test_ml_latest_quoted_titles(tmp_path):
    d = load_dataset("ml-latest-small", _write_latest(tmp_path / "ml-latest-small"))
    assert d.items["title"].tolist() == ["American President, The (1995)", "Amélie (2001)"]
    assert d.items["genres"].tolist() == [("Comedy", "Drama", "Romance"), ()]
    assert d.rating.tolist() == [4.0, 3.5, 0.5]


def test_ml_latest_bad_encoding_names_line(tmp_path):
    bad = 'movieId,title,genres\n1,Toy (1995),Comedy\n2,Am\xe9lie (2001),Drama\n'.encode("latin-1")
    root = _write_latest(tmp_path / "ml-20m", bad)
    with pytest.raises(DataFormatError, match=r"movies.csv, line 3: .*not valid utf-8"):
        load_dataset("ml-20m", root)


def _write_bx(root: Path):
    root.mkdir(parents=True, exist_ok=True)
    (root / "BX-Book-Ratings.csv").write_bytes(
        b'"User-ID";"ISBN";"Book-Rating"\n"276725";"034545104X";"0"\n"276726";"0155061224";"5"\n'
        b'"276727";"034545104X";"9"\n')
    (root / "BX-Books.csv").write_bytes(
        '"ISBN";"Book-Title";"Book-Author";"Year-Of-Publication";"Publisher";"Image-URL-S";"Image-URL-M";"Image-URL-L"\n'
        '"034545104X";"Flesh Tones: A Novel";"M. J. Rose";"2002";"Ballantine Books";"s";"m";"l"\n'
        '"0155061224";"Rites of Passage; Café";"Judith Rae";"2001";"Heinle";"s";"m";"l"\n'.encode("latin-1"))
    (root / "BX-Users.csv").write_bytes(b'"User-ID";"Location";"Age"\n"276725";"tyler, texas, usa";NULL\n'
                                        b'"276726";"seattle, washington, usa";"25"\n')
    return root


def test_book_crossing_implicit_zero_and_no_time(tmp_path):
    from metarec.core.errors import SplitError
    from metarec.data import make_split, SplitConfig

    d = load_dataset("book-crossing", _write_bx(tmp_path / "book-crossing"))
    assert d.n_interactions == 3 and not d.has_timestamps
    assert np.isnan(d.rating[0]) and d.rating[1] == 5
    assert d.items["title"][1] == "Rites of Passage; Café"
    with pytest.raises(SplitError, match="no timestamps"):
        make_split(d)
    assert make_split(d, SplitConfig(mode="random", new_user_fraction=0.4)).config.mode == "random"


def test_generic_csv_with_dates_and_items(tmp_path):
    root = tmp_path / "shop"
    root.mkdir()
    (root / "interactions.csv").write_text("uid,sku,when\na,x1,2024-01-01\na,x2,2024-01-03\nb,x1,2024-02-01\n")
    (root / "items.csv").write_text("sku,title,description\nx1,Kettle,Boils water\nx2,Mug,\nx3,Teapot,Never bought\n")
    d = load_dataset("csv", root, csv=CsvConfig(user_col="uid", item_col="sku", rating_col=None, time_col="when"))
    assert d.n_items == 3 and d.n_interactions == 3 and not d.explicit
    assert d.items["description"].tolist() == ["Boils water", None, "Never bought"]
    assert d.timestamp.tolist()[0] == 1704067200
    with pytest.raises(UnknownItemError, match="x9"):
        d.item_index(["x9"])


def test_generic_csv_bad_date_names_line(tmp_path):
    root = tmp_path / "shop"
    root.mkdir()
    (root / "interactions.csv").write_text("user_id,item_id,rating,timestamp\na,x,1,2024-01-01\na,y,2,yesterday\n")
    with pytest.raises(DataFormatError, match=r"line 3: column 'timestamp'"):
        load_dataset("csv", root)
    # unix seconds with one bad value: the bad row is named, not the first good one
    (root / "interactions.csv").write_text("user_id,item_id,rating,timestamp\na,x,1,100\na,y,2,abc\nb,x,3,300\n")
    with pytest.raises(DataFormatError, match=r"line 3: column 'timestamp': expected unix seconds or a date, got 'abc'"):
        load_dataset("csv", root)
    # dates in more than one form all load (pandas would guess one form and drop the rest), silently
    (root / "interactions.csv").write_text("user_id,item_id,rating,timestamp\na,x,1,2024-01-01\n"
                                           "a,y,2,2024-01-02 10:30\nb,x,3,Jan 3 2024\nb,y,4,01/04/2024\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = load_dataset("csv", root)
    day = 86400
    assert d.timestamp.tolist() == [1704067200, 1704067200 + day + 37800, 1704067200 + 2 * day,
                                    1704067200 + 3 * day]
    (root / "interactions.csv").write_text("user_id,item_id,rating,timestamp\na,x,1,2024-01-01\na,y,2,1700000000\n")
    with pytest.raises(DataFormatError, match=r"line 3: column 'timestamp': mixes unix seconds \('1700000000'\)"):
        load_dataset("csv", root)


def test_generic_parquet_with_typed_columns(tmp_path):
    # parquet keeps types: integer ids, float ratings, datetime times, a nullable float year and a
    # missing description must load exactly like their CSV spellings
    root = tmp_path / "shop"
    root.mkdir()
    pd.DataFrame({
        "uid": [7, 7, 8], "sku": [101, 102, 101], "stars": [4.0, 2.5, 5.0],
        "when": pd.to_datetime(["2024-01-01", "2024-01-03", "2024-02-01"], utc=True),
    }).to_parquet(root / "log.parquet")
    pd.DataFrame({"sku": [101, 102, 103], "title": ["Kettle", "Mug", "Teapot"],
                  "description": ["Boils water", None, "Never bought"], "year": [2001.0, np.nan, 1999.0],
                  }).to_parquet(root / "catalog.parquet")
    d = load_dataset("csv", root, csv=CsvConfig(interactions="log.parquet", items="catalog.parquet",
                                                user_col="uid", item_col="sku", rating_col="stars",
                                                time_col="when"))
    assert d.n_items == 3 and d.n_interactions == 3 and d.explicit
    assert d.items["description"].tolist() == ["Boils water", None, "Never bought"]
    assert d.items["year"].tolist()[0] == 2001 and d.items["year"].tolist()[2] == 1999
    assert pd.isna(d.items["year"].tolist()[1])
    assert sorted(d.rating.tolist()) == [2.5, 4.0, 5.0]
    assert sorted(d.timestamp.tolist()) == [1704067200, 1704240000, 1706745600]
    assert d.item_index([101]).tolist() == d.item_index(["101"]).tolist()
