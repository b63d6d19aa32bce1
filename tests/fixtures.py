"""Small datasets the tests write themselves, in each supported file format."""

from __future__ import annotations

from pathlib import Path

import numpy as np

GENRES19 = 19


def write_ml100k(root: Path, *, n_users: int = 30, n_items: int = 40, per_user: int = 8,
                 seed: int = 0, unrated: int = 0) -> Path:
    """A tiny ML-100K-format folder: random ratings with distinct timestamps, latin-1 titles.
    `unrated`: that many more items (ids n_items + 1, ...) in the catalog that nobody rated, new
    items as a fitted model sees them."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    lines = []
    t0 = 880_000_000
    for u in range(1, n_users + 1):
        start = t0 + u * 10_000  # users arrive one after another
        items = rng.choice(np.arange(1, n_items + 1), size=per_user, replace=False)
        for j, i in enumerate(items):
            lines.append(f"{u}\t{i}\t{rng.integers(1, 6)}\t{start + j * 3_000}")
    rng.shuffle(lines)
    (root / "u.data").write_text("\n".join(lines) + "\n", encoding="latin-1")
    item_lines = []
    for i in range(1, n_items + unrated + 1):
        flags = ["0"] * GENRES19
        flags[1 + i % 18] = "1"
        title = "Misérables, Les (1995)" if i == 3 else f"Movie {i} (19{50 + i % 50})"
        item_lines.append(f"{i}|{title}|01-Jan-19{50 + i % 50}||http://x|" + "|".join(flags))
    (root / "u.item").write_bytes(("\n".join(item_lines) + "\n").encode("latin-1"))
    occ = ["technician", "writer", "student", "other"]
    user_lines = [f"{u}|{20 + u % 40}|{'MF'[u % 2]}|{occ[u % 4]}|0{u:04d}" for u in range(1, n_users + 1)]
    (root / "u.user").write_text("\n".join(user_lines) + "\n", encoding="latin-1")
    return root


def write_communities(root: Path, *, n_users: int = 48, block: int = 20, per_user: int = 8,
                      seed: int = 0) -> Path:
    """Two communities in ML-100K format, a dataset whose right answer is known (implicit's
    "checkerboard"): users of odd index take items 1..block only, the others items block+1..2*block
    only, so a user's unseen items of their own block are exactly what a personalised method must
    put first. Each block has its own genre and gender; titles name no block."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    lines = []
    t0 = 880_000_000
    for u in range(1, n_users + 1):
        start = t0 + u * 10_000  # users arrive one after another, so the time cut leaves the last ones new
        first = 1 if u % 2 else block + 1
        items = rng.choice(np.arange(first, first + block), size=per_user, replace=False)
        for j, i in enumerate(items):
            lines.append(f"{u}\t{i}\t{rng.integers(3, 6)}\t{start + j * 3_000}")
    rng.shuffle(lines)
    (root / "u.data").write_text("\n".join(lines) + "\n", encoding="latin-1")
    item_lines = []
    for i in range(1, 2 * block + 1):
        flags = ["0"] * GENRES19
        flags[1 if i <= block else 2] = "1"
        item_lines.append(f"{i}|Movie {i} (19{50 + i % 50})|01-Jan-19{50 + i % 50}||http://x|" + "|".join(flags))
    (root / "u.item").write_bytes(("\n".join(item_lines) + "\n").encode("latin-1"))
    user_lines = [f"{u}|{20 + u % 40}|{'FM'[u % 2]}|other|0{u:04d}" for u in range(1, n_users + 1)]
    (root / "u.user").write_text("\n".join(user_lines) + "\n", encoding="latin-1")
    return root


def run_cli(args: list[str], *, check: bool = True):
    """`metarec ARGS` in this process (typer's CliRunner): the result's exit_code, stdout and stderr.
    For tests where a separate process is not the point; `check` fails on a non-zero exit."""
    from typer.testing import CliRunner

    from metarec.cli.app import app

    result = CliRunner().invoke(app, [str(a) for a in args])
    if check and result.exit_code != 0:
        raise AssertionError(f"metarec {' '.join(map(str, args))} exited {result.exit_code}: "
                             f"{result.stdout}{result.stderr}{result.exception!r}")
    return result
