"""RecBole atomic files: a folder written by metarec reads back to the same log and item text, and
hand-written RecBole files (their field names, quotes as plain characters) load."""

import numpy as np
import pytest

from metarec.core.errors import DataFormatError
from metarec.data import load_dataset
from metarec.encoders import item_texts
from tests.fixtures import run_cli, write_ml100k


def test_export_then_load_gives_the_same_log_and_text(tmp_path):
    src = write_ml100k(tmp_path / "ml-100k")
    r = run_cli(["data", "export", "-d", "ml-100k", "--data-dir", src, "--to", tmp_path / "rb"])
    assert "ml-100k.inter" in r.stdout and "ml-100k.item" in r.stdout and "ml-100k.user" in r.stdout
    a, b = load_dataset("ml-100k", src), load_dataset("recbole", tmp_path / "rb" / "ml-100k")
    assert (a.n_users, a.n_items, a.n_interactions) == (b.n_users, b.n_items, b.n_interactions)
    np.testing.assert_array_equal(a.rating, b.rating)
    np.testing.assert_array_equal(a.timestamp, b.timestamp)
    assert item_texts(a.items) == item_texts(b.items)  # latin-1 titles included
    occ = lambda d: dict(zip(d.users["user_id"].astype(str), d.users["occupation"]))  # noqa: E731
    assert occ(a) == occ(b)  # ids come back as text ("10" sorts before "2"): compared by id
    bad = run_cli(["data", "export", "-d", "ml-100k", "--data-dir", src, "--to", tmp_path / "x", "--format", "csv"],
                  check=False)
    assert bad.exit_code == 2 and "the formats written are: recbole" in bad.stderr


def test_recbole_field_names_and_bad_files(tmp_path):
    root = tmp_path / "books"
    root.mkdir()
    (root / "books.inter").write_text("user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
                                      "u1\tb1\t4\t1000\nu1\tb2\t5\t1100\n\nu2\tb1\t3\t1200\n")
    (root / "books.item").write_text('item_id:token\tbook_title:token_seq\tpublication_year:token\tcategories:token_seq\n'
                                     'b1\tThe "Quoted" Book\t1999\tfiction classics\nb2\tSecond\t\t\n')
    d = load_dataset("recbole", root)
    assert d.items["title"].tolist() == ['The "Quoted" Book', "Second"]
    assert d.items["year"].tolist() == [1999, None] and d.items["genres"][0] == ("fiction", "classics")
    (root / "books.inter").write_text("user_id:token\titem_id:token\trating:float\nu1\tb1\tfour\n")
    with pytest.raises(DataFormatError, match=r"books.inter, line 2: column 'rating:float'"):
        load_dataset("recbole", root)
    (root / "books.inter").write_text("user_id\titem_id:token\n")
    with pytest.raises(DataFormatError, match=r"books.inter, line 1: header cell 'user_id'"):
        load_dataset("recbole", root)


def test_a_benchmark_runs_on_a_recbole_folder(tmp_path):
    src = write_ml100k(tmp_path / "ml-100k", n_users=40)
    run_cli(["data", "export", "-d", "ml-100k", "--data-dir", src, "--to", tmp_path / "rb"])
    out = tmp_path / "out"
    r = run_cli(["--no-progress", "benchmark", "-d", "recbole", "--data-dir", tmp_path / "rb" / "ml-100k",
                 "--methods", "popularity,itemknn", "--shots", "1", "--seeds", "1", "--out", out])
    assert "K=1 test NDCG@10: popularity 0." in r.stdout and (out / "report.md").is_file()
