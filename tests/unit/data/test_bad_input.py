"""Bad files: every reproduction of issue 31 answers with a MetarecError naming file and line, and
property tests (Hypothesis) over small tables with bad cells find the next one: a loader either loads
a table or raises MetarecError naming the file, line and column; `make_split` on whatever loads
either splits or says why not."""

from __future__ import annotations

import csv
import io
import json
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metarec.core.errors import DataFormatError, MetarecError, SplitError
from metarec.data import SplitConfig, load_dataset, make_split
from metarec.data.loaders import CsvConfig, read_interactions

HEADER = "user_id,item_id,rating,timestamp\n"
GOOD = "a,x,4,1000\na,y,5,2000\nb,x,3,3000\nb,y,2,4000\nc,x,1,5000\nc,z,4,6000\n"


def _shop(tmp_path, interactions: str | bytes, items: str | bytes | None = None):
    root = tmp_path / "shop"
    root.mkdir(exist_ok=True)
    write = lambda p, t: p.write_bytes(t) if isinstance(t, bytes) else p.write_text(t)  # noqa: E731
    write(root / "interactions.csv", interactions)
    if items is not None:
        write(root / "items.csv", items)
    return root


# -- the reproductions ----------------------------------------------------------------------------
@pytest.mark.parametrize("interactions, items, message", [
    ("", None, r"interactions.csv, line 1: the file is empty; expected a header line"),
    (HEADER + GOOD, "", r"items.csv, line 1: the file is empty"),
    (HEADER, None, r"interactions.csv, line 2: no interactions: the file has a header but no rows"),
    (HEADER + "a,x,inf,1000\n", None, r"line 2: column 'rating': expected a finite number, got 'inf'"),
    (HEADER + "a,x,4,1000\na,y,nan,2000\n", None, r"line 3: column 'rating': expected a finite number, got 'nan'"),
    (HEADER + "a,x,4,inf\n", None, r"line 2: column 'timestamp': expected unix seconds between"),
    (HEADER + "a,x,4,1e30\n", None, r"line 2: column 'timestamp': expected unix seconds .* got '1e30'"),
    (HEADER + "a,x,4,1700000000000\n", None, r"line 2: .*got '1700000000000' \(milliseconds\? divide by 1000\)"),
    # a bad rating on line 8 after three blank lines is reported on line 8 (it was 5)
    (HEADER + "a,x,4,1000\n\n\n\nb,x,4,2000\nb,y,3,2500\nc,x,nine,3000\n", None, r"line 8: column 'rating'"),
    (HEADER + "a,x,4,1000\n\n\nb,y,2,abc\n", None, r"line 5: column 'timestamp'"),
    (HEADER + "a,,4,1000\n", None, r"line 2: column 'item_id': expected an id, the field is empty"),
    (HEADER + " ,x,4,1000\n", None, r"line 2: column 'user_id': expected an id, the field is empty"),
    (HEADER + "a,x,4\n", None, r"line 2: expected 4 fields separated by ',' \(as in the header: user_id, item_id"),
    (HEADER + "a,x,4,1000,extra\n", None, r"line 2: expected 4 fields .* found 5"),
    (HEADER + GOOD, "item_id,title\nx,Kettle\ny,Mug\n\nx,Kettle again\n",
     r"items.csv, line 5: item 'x' is listed twice \(lines 2 and 5\)"),
    (HEADER + GOOD, "item_id,price\nx,3\n", r"items.csv, line 1: no item text: expected a column 'title'"),
    (HEADER + GOOD, "item_id,title\n,Kettle\n", r"items.csv, line 2: column 'item_id': expected an id"),
    (b"user_id,item_id,rating,timestamp\na,x,4,1000\na,\xff,4,1000\n", None,
     r"interactions.csv, line 3: bytes b'\\xff' are not valid utf-8"),
    ('user_id,item_id,rating,timestamp\na,"x,4,1000\n', None, r"interactions.csv, line \d: cannot parse"),
])
def test_bad_files_name_the_file_and_line(tmp_path, interactions, items, message):
    root = _shop(tmp_path, interactions, items)
    with pytest.raises(DataFormatError, match=message):
        load_dataset("csv", root)


def test_quoted_newlines_and_blank_lines_keep_the_line_numbers(tmp_path):
    items = 'item_id,title,description\nx,Kettle,"Boils\nwater\n\nfast"\n\ny,Mug,\ny,Mug again,\n'
    with pytest.raises(DataFormatError, match=r"items.csv, line 8: item 'y' is listed twice \(lines 7 and 8\)"):
        load_dataset("csv", _shop(tmp_path, HEADER + GOOD, items))
    d = load_dataset("csv", _shop(tmp_path, HEADER + GOOD, items.rsplit("y,Mug again,\n", 1)[0]))
    assert d.items["description"].tolist()[:2] == ["Boils\nwater\n\nfast", None]


def test_repeated_pairs_keep_the_first_interaction_and_say_so(tmp_path):
    root = _shop(tmp_path, HEADER + "a,x,2,3000\na,y,5,2000\na,x,4,1000\nb,x,3,500\n")
    d = load_dataset("csv", root)
    assert d.n_interactions == 3
    first = (d.user == 0) & (d.item == d.item_index(["x"])[0])
    assert d.rating[first].tolist() == [4.0] and d.timestamp[first].tolist() == [1000]  # the earliest
    assert d.info()["notes"] == ["1 repeated (user, item) row(s) dropped: each pair keeps its first interaction in time"]


def test_items_without_a_title_load_with_a_note_and_a_bom_is_no_column_name(tmp_path):
    d = load_dataset("csv", _shop(tmp_path, "\ufeff" + HEADER + GOOD, "item_id,description\nx,Boils water\n"))
    assert d.items["title"].tolist()[:1] == ["x"] and d.items["description"].tolist()[0] == "Boils water"
    assert any("no 'title' column" in n for n in d.info()["notes"])


def test_data_info_and_split_are_clear_on_degenerate_logs(tmp_path):
    from typer.testing import CliRunner

    from metarec.cli.app import app

    runner = CliRunner()
    root = _shop(tmp_path, HEADER)
    r = runner.invoke(app, ["data", "split", "-d", "csv", "--data-dir", str(root)])
    assert r.exit_code == 2 and "no interactions" in r.output and "Traceback" not in r.output
    root = _shop(tmp_path, HEADER + "a,x,4,1000\n")  # one user: no new users after any cut
    r = runner.invoke(app, ["data", "split", "-d", "csv", "--data-dir", str(root)])
    assert r.exit_code == 2 and "warm and" in r.output
    r = runner.invoke(app, ["data", "info", "-d", "csv", "--data-dir", str(root), "--json"])
    assert r.exit_code == 0 and json.loads(r.output)["rating_max"] == 4.0
    r = runner.invoke(app, ["data", "info", "-d", "csv", "--data-dir", str(_shop(tmp_path, HEADER + "a,x,inf,1\n"))])
    assert r.exit_code == 2 and "expected a finite number, got 'inf'" in r.output


# -- properties -----------------------------------------------------------------------------------
BAD_CELLS = ["", " ", "nan", "NaN", "inf", "-inf", "1e30", "-1e30", "9" * 25, "-3", "0", "2.5", "abc",
             "é", "\x00", "1,5", '"', "None", "true", "  7 ", "2024-01-01", "01/02/2024", "0x1F", "1_000"]


def _cell(draw, good: str) -> str:
    return draw(st.one_of(st.just(good), st.sampled_from(BAD_CELLS), st.text(max_size=6)))


@st.composite
def tables(draw):
    """(file bytes, number of data rows, the file's lines of each data row when written plainly)."""
    n = draw(st.integers(0, 8))
    rows = []
    for r in range(n):
        u = draw(st.sampled_from(["a", "b", "c", "d"]))
        rows.append([_cell(draw, u) if draw(st.booleans()) else u,
                     _cell(draw, "x") if draw(st.booleans()) else draw(st.sampled_from(["x", "y", "z"])),
                     _cell(draw, "4"), _cell(draw, str(1000 + 100 * r))])
    if n and draw(st.booleans()):
        rows.append(list(rows[0]))  # a repeated row
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["user_id", "item_id", "rating", "timestamp"])
    for row in rows:
        if draw(st.integers(0, 5)) == 0:
            buf.write("\n" * draw(st.integers(1, 3)))  # blank lines
        if draw(st.integers(0, 7)) == 0:
            row = row[:draw(st.integers(1, 3))]  # a short row
        writer.writerow(row)
    text = buf.getvalue()
    raw = text.encode("utf-8", errors="surrogatepass")
    if draw(st.integers(0, 9)) == 0:
        raw = raw.replace(b"a", b"\xe9", 1)  # latin-1 bytes in a utf-8 file
    if draw(st.integers(0, 9)) == 0:
        raw = b""
    return raw


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=tables())
def test_any_table_loads_or_names_file_and_line(tmp_path, raw):
    root = _shop(tmp_path, raw)
    try:
        d = load_dataset("csv", root)
    except MetarecError as e:
        assert isinstance(e, DataFormatError), repr(e)
        assert str(root / "interactions.csv") in str(e) and e.line is not None and e.line >= 1, str(e)
        named = re.findall(r"column '([^']*)'", str(e))  # a bad cell names its column
        assert set(named) <= {"user_id", "item_id", "rating", "timestamp"}, str(e)
        return
    # what loads is finite and sound, its summary is JSON, and the split splits or says why not
    assert np.isfinite(d.rating).all() and d.n_interactions >= 1
    assert len({(u, i) for u, i in zip(d.user, d.item)}) == d.n_interactions
    json.dumps(d.info(), allow_nan=False)
    for mode in ("time", "random"):
        try:
            s = make_split(d, SplitConfig(mode=mode))
        except SplitError:
            continue
        json.dumps(s.summary(), allow_nan=False)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n_rows=st.integers(1, 12), bad_row=st.data(), blanks=st.lists(st.integers(0, 3), min_size=13, max_size=13),
       column=st.sampled_from(["rating", "timestamp", "item_id"]), bad=st.sampled_from(["inf", "", "1e30", "x y"]))
def test_the_reported_line_is_the_bad_rows_line(tmp_path, n_rows, bad_row, blanks, column, bad):
    j = bad_row.draw(st.integers(0, n_rows - 1))
    if column == "item_id" and bad != "":
        bad = ""  # any text is an item id; only an empty one is bad
    lines, line_of_bad = [HEADER.strip()], None
    for r in range(n_rows):
        lines += [""] * blanks[r]
        row = {"user_id": "u", "item_id": f"i{r}", "rating": "3", "timestamp": str(1000 + r)}
        if r == j:
            row[column] = bad
            line_of_bad = len(lines) + 1
        lines.append(",".join(row.values()))
    path = _shop(tmp_path, "\n".join(lines) + "\n") / "interactions.csv"
    with pytest.raises(DataFormatError) as e:
        read_interactions(path, CsvConfig())
    assert e.value.line == line_of_bad and f"column '{column}'" in str(e.value), str(e.value)


def test_movielens_files_get_the_same_checks(tmp_path):
    from tests.fixtures import write_ml100k

    root = write_ml100k(tmp_path / "ml-100k")
    lines = (root / "u.data").read_text().splitlines()
    u, i, r, _ = lines[3].split("\t")
    lines[3] = f"{u}\t{i}\t{r}\t99999999999999"  # a time in the year 3 million
    (root / "u.data").write_text("\n\n".join(lines[:2]) + "\n" + "\n".join(lines[2:]) + "\n")  # and a blank line
    with pytest.raises(DataFormatError, match=r"u.data, line 5: column 'timestamp': expected unix seconds between"):
        load_dataset("ml-100k", root)
    (root / "u.data").write_text("")
    with pytest.raises(DataFormatError, match=r"u.data, line 1: the file is empty; expected lines of 4 fields"):
        load_dataset("ml-100k", root)
