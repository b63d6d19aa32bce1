"""Keep numpy's BLAS pool from fighting torch's OpenMP pool over the same cores.

metarec interleaves small numpy work (support features) with torch work (the head) many times a
second. OpenBLAS worker threads spin-wait after each call, so while torch runs they steal its
cores: on 2 cores adapt+rank of one user was twice as slow. `numpy_single_thread()` limits the
BLAS pool to one thread inside a block (the numpy matrices here are small) and restores it after.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from threadpoolctl import ThreadpoolController

_CONTROLLER: ThreadpoolController | None = None


@contextlib.contextmanager
def numpy_single_thread() -> Iterator[None]:
    """Within the block, BLAS libraries (OpenBLAS/MKL as loaded by numpy/scipy) use one thread."""
    global _CONTROLLER
    if _CONTROLLER is None:
        _CONTROLLER = ThreadpoolController()
    with _CONTROLLER.limit(limits=1, user_api="blas"):
        yield
