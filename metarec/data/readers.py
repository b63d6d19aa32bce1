"""Low-level delimited-file reading with errors that name the file and line.

Everything is read as strings first, then converted column by column, so the first bad value can be
reported with its exact line number instead of pandas' generic message.
"""

from __future__ import annotations

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
        return raw.decode(encoding)
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataFormatError(
            f"bytes {raw[e.start:e.end]!r} are not valid {encoding}; expected {encoding}-encoded text",
            path=path, line=line,
        ) from e


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
    s = df[column].str.strip()
    vals = pd.to_numeric(s, errors="coerce")
    bad = vals.isna() & ~(allow_empty & (s == ""))
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        line = _line_of(df, row, header)
        raise DataFormatError(
            f"column {column!r}: expected {'an integer' if kind == 'int' else 'a number'}, "
            f"got {df[column].iloc[row]!r}", path=path, line=line,
        )
    if kind == "int":
        if not allow_empty and (vals % 1 != 0).any():
            row = int(np.flatnonzero((vals % 1 != 0).to_numpy())[0])
            raise DataFormatError(
                f"column {column!r}: expected an integer, got {df[column].iloc[row]!r}",
                path=path, line=_line_of(df, row, header),
            )
        return vals.to_numpy(np.float64) if allow_empty else vals.to_numpy(np.int64)
    return vals.to_numpy(np.float64)


def _line_of(df: pd.DataFrame, row: int, header: bool) -> int:
    if "line" in df.attrs:
        return int(df.attrs["line"][row])
    # quoted CSV: rows map to lines one to one unless a quoted field spans lines
    return row + 1 + (1 if header else 0)
