"""How a benchmark script records what it measured: the command line that ran it, and a JSON file
plus a Markdown table under `benchmarks/results/` that both name that command."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path


def command_line() -> str:
    """This run's command, as it would be typed again."""
    return "python " + " ".join(shlex.quote(a) for a in sys.argv)


def write_result(out: str | Path, stem: str, payload: dict, title: str, command: str, body: str) -> None:
    """`out/stem.json` (payload) and `out/stem.md` (title, the command, then body)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(payload, indent=2) + "\n")
    (out / f"{stem}.md").write_text(f"# {title}\n\nProduced by:\n\n```\n{command}\n```\n\n{body}\n")
