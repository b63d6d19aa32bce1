"""Low-level delimited-file reading with errors that name the file and line.

Everything is read as strings first, then converted column by column, so the first bad value can be
reported with its exact line number instead of pandas' generic message.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

from metarec.core.errors import DataFormatError, DatasetNotFoundError


def read_text(path: Path, encoding: str) -> str:
    """Decode a whole file; a decoding failure names the line that holds the bad bytes."""
    if not path.is_file():
        raise DatasetNotFoundError(f"{path}: file not found")
    raw = path.read_bytes()
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataFormatError(
            f"bytes {raw[e.start:e.end]!r} are not valid {encoding}; expected {encoding}-encoded text",
            path=path, line=line,
        ) from e
    # a byte-order mark (Excel writes one) is not part of the first column's name
    return text[1:] if text.startswith("\ufeff") else text


def read_csv_records(path: Path, *, sep: str, encoding: str, quoted: bool = True) -> pd.DataFrame:
    """A delimited file with a header line as a DataFrame of strings (empty fields are ""), with
    `attrs["line"]`: the 1-based line on which each row starts.

    Python's csv reader does the parsing, so quoted fields may hold the separator or newlines and
    the line numbers stay exact (`quoted=False`: a '"' is an ordinary character, as in RecBole's
    files); blank lines are skipped. A file that is empty, or whose rows do not have as many fields
    as its header, is a DataFormatError naming the line."""
    text = read_text(path, encoding)
    if not text.strip():
        raise DataFormatError("the file is empty; expected a header line naming the columns", path=path, line=1)
    reader = (csv.reader(io.StringIO(text, newline=""), delimiter=sep, quotechar='"', doublequote=True, strict=True)
              if quoted else csv.reader(io.StringIO(text, newline=""), delimiter=sep, quoting=csv.QUOTE_NONE))
    rows: list[list[str]] = []
    lines: list[int] = []
    header: list[str] | None = None
    last = 0  # the reader's line count after the previous record: a record starts on the next line
    try:
        for rec in reader:
            start, last = last + 1, reader.line_num
            if not rec or (len(rec) == 1 and not rec[0].strip()):
                continue  # a blank line
            if header is None:
                header = [h.strip() for h in rec]
                dup = sorted({h for h in header if header.count(h) > 1})
                if dup:
                    raise DataFormatError(f"column name(s) {dup} appear more than once in the header",
                                          path=path, line=start)
                continue
            if len(rec) != len(header):
                raise DataFormatError(
                    f"expected {len(header)} fields separated by {sep!r} (as in the header: "
                    f"{', '.join(header)}), found {len(rec)}: {sep.join(rec)[:80]!r}", path=path, line=start)
            rows.append(rec)
            lines.append(start)
    except csv.Error as e:
        raise DataFormatError(f"cannot parse: {e}", path=path, line=reader.line_num) from e
    df = pd.DataFrame(rows, columns=header, dtype=object) if rows else pd.DataFrame(
        {h: pd.Series([], dtype=object) for h in header})
    df.attrs["line"] = np.asarray(lines, np.int64)
    return df


def read_table(
    path: Path,
    *,
    sep: str,
    names: list[str],
    encoding: str,
    header: bool = False,
    quoted: bool = False,
    min_fields: int | None = None,
) -> pd.DataFrame:
    """Read a delimited file into a DataFrame of strings, checking the field count of every line.

    Args:
        sep: a literal separator (multi-character separators such as "::" are supported).
        names: the expected column names, in file order; a line with another number of fields
            (fewer than `min_fields` if given) is an error naming that line.
        header: skip (and check) the first line.
        quoted: fields may be double-quoted and contain the separator.
    """
    text = read_text(path, encoding)
    if not text.strip():
        raise DataFormatError(f"the file is empty; expected lines of {len(names)} fields ({', '.join(names[:6])}"
                              f"{', ...' if len(names) > 6 else ''})", path=path, line=1)
    if len(sep) > 1:
        # the C parser takes one character; \x1f (unit separator) never occurs in these files
        if "\x1f" in text:
            raise DataFormatError("unexpected control character \\x1f", path=path)
        text = text.replace(sep, "\x1f")
        sep = "\x1f"
    lines_offset = 1 if header else 0
    line_numbers = _check_field_counts(text, path, sep, len(names), quoted, header, min_fields)
    try:
        df = pd.read_csv(
            io.StringIO(text), sep=sep, header=None, names=names, dtype=str, skiprows=lines_offset,
            quoting=0 if quoted else 3, keep_default_na=False, skip_blank_lines=True,
            engine="c",
        )
    except pd.errors.ParserError as e:
        m = re.search(r"line (\d+)", str(e))
        line = int(m.group(1)) + lines_offset if m else None
        raise DataFormatError(f"cannot parse: {e}", path=path, line=line) from e
    if line_numbers is not None and len(line_numbers) == len(df):
        df.attrs["line"] = line_numbers
    return df


def _check_field_counts(text, path, sep, n_fields, quoted, header, min_fields) -> np.ndarray | None:
    """Check every line's field count; return the 1-based line number of each data row."""
    if quoted:
        return None  # the CSV parser checks quoted files (separators may sit inside quotes)
    start = 1 if header else 0
    rows: list[int] = []
    # split on "\n" only: str.splitlines would also split on \x85 and \x1c-\x1e, which are
    # ordinary characters in latin-1 text
    for i, line in enumerate(text.split("\n")[start:], start=start + 1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        rows.append(i)
        n = line.count(sep) + 1
        if n != n_fields and not (min_fields is not None and n >= min_fields):
            shown = sep if sep != "\x1f" else "::"
            raise DataFormatError(
                f"expected {n_fields} fields separated by {shown!r}, found {n}: {line[:80]!r}",
                path=path, line=i,
            )
    return np.asarray(rows, dtype=np.int64)


def to_numeric(
    df: pd.DataFrame, column: str, path: Path, *, kind: str = "int", header: bool = False,
    allow_empty: bool = False,
) -> np.ndarray:
    """Convert a string column to numbers; the first non-number is reported with its line."""
    col = df[column]
    s = col.astype(str).str.strip()
    vals = pd.to_numeric(s, errors="coerce").astype(np.float64)
    empty = allow_empty & (col.isna() | (s == "")).to_numpy()  # "" in a CSV, null in Parquet
    # NaN, inf and numbers past 2^53 (where float64 stops holding every integer) are no values
    bad = ~empty & ~(np.isfinite(vals) & (vals.abs() <= MAX_EXACT)).to_numpy()
    if kind == "int":
        bad |= ~empty & (vals % 1 != 0).to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        got, v = col.iloc[row], vals.iloc[row]
        detail = ("the field is empty" if isinstance(got, str) and not got.strip()
                  else f"got {got!r}, out of range (at most 2^53 in size)" if np.isfinite(v) and abs(v) > MAX_EXACT
                  else f"got {got!r}")
        raise DataFormatError(f"column {column!r}: expected {'an integer' if kind == 'int' else 'a finite number'}"
                              f", {detail}", path=path, line=line_of(df, row, header))
    if kind == "int":
        return vals.to_numpy(np.float64) if allow_empty else vals.to_numpy(np.int64)
    return vals.to_numpy(np.float64)


MAX_EXACT = 2.0 ** 53


def line_of(df: pd.DataFrame, row: int, header: bool = True) -> int | None:
    """The 1-based file line of `df`'s row `row`: from `attrs["line"]` when the reader recorded it
    (None there: a Parquet file, which has no lines)."""
    if "line" in df.attrs:
        lines = df.attrs["line"]
        return None if lines is None else int(lines[row])
    # quoted CSV: rows map to lines one to one unless a quoted field spans lines
    return row + 1 + (1 if header else 0)
