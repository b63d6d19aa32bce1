"""Options and output helpers shared by the CLI's sub-commands."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from metarec.core.errors import MetarecError

console = Console(stderr=False)
err_console = Console(stderr=True)

DatasetOpt = Annotated[str, typer.Option("--dataset", "-d", help="Dataset name, e.g. ml-100k.")]
DataDirOpt = Annotated[
    Optional[Path],
    typer.Option("--data-dir", help="Folder with the dataset files (default: $METAREC_DATA_DIR/<name>)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed for the validation/test user split.")]
SplitModeOpt = Annotated[
    str, typer.Option("--split", help="'time' (protocol) or 'random' (data without timestamps).")
]
ItemFieldsOpt = Annotated[
    Optional[str], typer.Option("--item-fields", help="Item fields that make the text, comma-separated, from "
                                "title, genres, brand, description, features, director, cast (default: all).")
]


def item_template(fields: str | None):
    """The TemplateConfig of --item-fields (None: the default, every field)."""
    from metarec.encoders.templates import TemplateConfig

    return None if not fields else TemplateConfig.with_fields(fields.split(","))


RetrievalOpt = Annotated[
    str, typer.Option("--retrieval", help="Score through FAISS candidates, re-scored exactly: 'auto' (catalogs of "
                      "--retrieval-min-items or more), 'on' or 'off' (every item through the network).")
]
RetrievalMinOpt = Annotated[int, typer.Option("--retrieval-min-items", help="Catalog size from which "
                                              "--retrieval auto retrieves.")]


def load_model(model: Path, device: str, retrieval: str = "auto", min_items: int | None = None):
    """A MetaRecommender from `model` on `device`, scoring through candidates as `retrieval` says
    (the index is built here when it is used, not at the first request)."""
    from dataclasses import replace

    from metarec.meta.recommender import MetaRecommender
    from metarec.models.retrieval import RetrievalConfig

    rec = MetaRecommender.load(model, device=device)
    cfg = RetrievalConfig(mode=retrieval)
    rec.set_retrieval(cfg if min_items is None else replace(cfg, min_items=min_items))
    if rec.retriever.active:
        rec.retriever.index()
    return rec


def parse_ints(s: str, what: str) -> tuple[int, ...]:
    """"1,3,5" -> (1, 3, 5); anything else is a usage error naming the option."""
    try:
        return tuple(int(x) for x in s.split(",") if x.strip())
    except ValueError:
        raise typer.BadParameter(f"{what} must be comma-separated integers, got {s!r}") from None


def setup_logging(verbose: bool) -> None:
    """Log to stderr at INFO with --verbose, else WARNING (only the CLI configures handlers)."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


class _AboveBars(logging.Handler):
    """Writes each record as one line on stderr through tqdm, so that lines and bars do not tear."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        tqdm.write(self.format(record), file=sys.stderr)


def say_progress() -> None:
    """For long commands (meta-train): metarec's INFO lines (each start tried, each validation, a
    resume) on stderr, plain, one per line: above the progress bars on a terminal, alone in a log
    file. With --verbose every logger already prints at INFO."""
    root = logging.getLogger()
    if root.level <= logging.INFO and root.handlers:
        return
    lib = logging.getLogger("metarec")
    if not any(isinstance(h, _AboveBars) for h in lib.handlers):
        handler = _AboveBars()
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        lib.addHandler(handler)
    lib.setLevel(logging.INFO)
    lib.propagate = False


def emit_json(obj: Any) -> None:
    """Print `obj` as indented, key-sorted JSON on stdout."""
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def emit_table(title: str, rows: list[tuple[str, Any]]) -> None:
    """Print (name, value) rows as a two-column table under `title`."""
    table = Table(title=title, show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    for k, v in rows:
        table.add_row(str(k), str(v))
    console.print(table)


def fail(exc: MetarecError) -> None:
    """Turn a deliberate error into a one-line message and exit code 2 (no traceback)."""
    err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)  # no newlines inside paths
    raise typer.Exit(code=2)
