"""The one progress-bar helper: tqdm, switched off globally or when output is not a terminal."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")
_ENABLED: bool | None = None


def set_progress(enabled: bool | None) -> None:
    """Force progress bars on/off; None restores the default (on when stderr is a TTY)."""
    global _ENABLED
    _ENABLED = enabled


def progress_enabled() -> bool:
    """Whether progress bars show: off with METAREC_NO_PROGRESS or set_progress(False), else on a terminal."""
    if os.environ.get("METAREC_NO_PROGRESS"):
        return False
    if _ENABLED is not None:
        return _ENABLED
    return sys.stderr.isatty()


def progress(iterable: Iterable[T] | None = None, **kwargs: Any) -> tqdm:
    """Wrap `iterable` (or make a manual bar with total=...) honouring the global switch."""
    kwargs.setdefault("disable", not progress_enabled())
    kwargs.setdefault("dynamic_ncols", True)
    kwargs.setdefault("leave", False)
    return tqdm(iterable, **kwargs)
