"""The exception hierarchy: every error metarec raises on purpose is a MetarecError.

Each subclass also inherits the builtin a caller would naturally catch (ValueError, KeyError...).
"""

from __future__ import annotations

from pathlib import Path


class MetarecError(Exception):
    """Base class of every error metarec raises deliberately."""


class ConfigError(MetarecError, ValueError):
    """A configuration value or combination is invalid."""


class MethodNotApplicableError(ConfigError):
    """A method cannot run on this dataset (e.g. a dense item x item model on a huge catalog).

    The benchmark runner skips such a method, says why in the report, and goes on with the rest."""


class DataFormatError(MetarecError, ValueError):
    """A data file does not have the expected format.

    Carries the file and (1-based) line so the message points at the exact place to fix.
    """

    def __init__(self, message: str, *, path: str | Path | None = None, line: int | None = None):
        self.path = None if path is None else Path(path)
        self.line = line
        where = ""
        if self.path is not None:
            where = f"{self.path}" + (f", line {line}" if line is not None else "") + ": "
        super().__init__(where + message)


class DatasetNotFoundError(MetarecError, FileNotFoundError):
    """A dataset directory or file is missing."""


class ChecksumError(MetarecError, ValueError):
    """A downloaded or local file does not match its published checksum."""


class DownloadError(MetarecError, ConnectionError):
    """A dataset release could not be fetched (no connection, an HTTP error)."""


class SplitError(MetarecError, ValueError):
    """The requested split cannot be made on this data (e.g. time split without timestamps)."""


class UnknownItemError(MetarecError, KeyError):
    """An item id is not in the catalog."""

    def __str__(self) -> str:  # KeyError quotes its argument; keep the message readable
        return str(self.args[0]) if self.args else ""


class CheckpointError(MetarecError, ValueError):
    """A checkpoint is missing, incomplete or inconsistent with the code."""


class RankLostError(MetarecError, RuntimeError):
    """A data-parallel process lost contact with the others (one died, hung or timed out)."""
