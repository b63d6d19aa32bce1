"""`metarec data info|split|download|export`: inspect a dataset and the protocol split, fetch a release,
write a dataset as RecBole atomic files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Optional

import typer

from metarec.cli.common import (DataDirOpt, DatasetOpt, JsonOpt, SeedOpt, SplitModeOpt, console, emit_json,
                                emit_table, fail)
from metarec.core.errors import MetarecError
from metarec.data import SplitConfig, load_dataset, make_split

app = typer.Typer(help="Inspect datasets and the cold-start split; fetch a verified release; export a dataset.",
                  no_args_is_help=True)


def _fmt_time(t) -> str:
    if t is None:
        return "-"
    return f"{t} ({dt.datetime.fromtimestamp(float(t), dt.timezone.utc):%Y-%m-%d %H:%M} UTC)"


@app.command("info")
def info(dataset: DatasetOpt, data_dir: DataDirOpt = None, json_out: JsonOpt = False) -> None:
    """Counts, rating range and time span of a dataset."""
    try:
        data = load_dataset(dataset, data_dir)
    except MetarecError as e:
        fail(e)
    out = data.info()
    if json_out:
        emit_json(out)
        return
    rows = [(k, v) for k, v in out.items() if k not in ("t_min", "t_max", "notes")]
    rows += [("t_min", _fmt_time(out["t_min"])), ("t_max", _fmt_time(out["t_max"]))]
    rows += [("note", n) for n in out["notes"]]
    emit_table(f"{dataset}", rows)


@app.command("download")
def download(dataset: DatasetOpt,
             to: Optional[Path] = typer.Option(None, "--to", help="Folder to unpack it under (default: "
                                               "$METAREC_DATA_DIR, else the user cache)."),
             force: bool = typer.Option(False, "--force", help="Fetch it again even if a copy is there.")) -> None:
    """Fetch a MovieLens release, check its size and sha256, unpack it, and say where it is."""
    from metarec.data.download import download_release, release_dir

    target = release_dir(dataset, to)
    if target.is_dir() and not force:
        console.print(f"{dataset}: already at {target} (--force fetches it again)", highlight=False)
        return
    try:
        path = download_release(dataset, to)
    except MetarecError as e:
        fail(e)
    console.print(f"{dataset}: verified and unpacked at {path}", highlight=False)


@app.command("export")
def export(dataset: DatasetOpt, to: Path = typer.Option(..., "--to", help="Folder to write <dataset name>/ under."),
           data_dir: DataDirOpt = None,
           fmt: str = typer.Option("recbole", "--format", help="recbole: atomic files (.inter, .item, .user).")) -> None:
    """Write a dataset in another library's format (RecBole's atomic files), text fields included."""
    from metarec.core.errors import ConfigError
    from metarec.data.recbole import write_recbole

    try:
        if fmt != "recbole":
            raise ConfigError(f"--format {fmt!r}: the formats written are: recbole")
        folder = write_recbole(load_dataset(dataset, data_dir), to)
    except MetarecError as e:
        fail(e)
    console.print(f"wrote {folder}: {', '.join(sorted(p.name for p in folder.iterdir()))}", highlight=False)


@app.command("split")
def split(dataset: DatasetOpt, data_dir: DataDirOpt = None, seed: SeedOpt = 0,
          split_mode: SplitModeOpt = "time",
          cut_percentile: float = typer.Option(80.0, help="Percentile of first-interaction times."),
          json_out: JsonOpt = False) -> None:
    """The protocol's cold-start split: cut time, user and item counts, users per shot count."""
    try:
        data = load_dataset(dataset, data_dir)
        s = make_split(data, SplitConfig(mode=split_mode, seed=seed, cut_percentile=cut_percentile))
    except MetarecError as e:
        fail(e)
    out = s.summary()
    if json_out:
        emit_json(out)
        return
    rows = []
    for k, v in out.items():
        if isinstance(v, dict):
            v = ", ".join(f"K={kk}: {vv}" for kk, vv in v.items())
        elif k == "cut_time":
            v = _fmt_time(v)
        rows.append((k, v))
    emit_table(f"{dataset} cold-start split (seed {seed})", rows)
