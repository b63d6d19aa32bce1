"""Root of the `metarec` command: wires the sub-command groups together."""

from __future__ import annotations

import typer

from metarec.cli import bench_cmd, data_cmd, encode_cmd, meta_cmd, serve_cmd
from metarec.cli.common import setup_logging
from metarec.core.progress import set_progress

app = typer.Typer(help="metarec: few-shot recommendation for new users.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
app.add_typer(data_cmd.app, name="data")
app.command("benchmark")(bench_cmd.benchmark)
app.command("encode")(encode_cmd.encode)
app.command("meta-train")(meta_cmd.meta_train)
app.command("recommend")(meta_cmd.recommend)
app.command("recommend-many")(meta_cmd.recommend_many)
app.command("evaluate")(meta_cmd.evaluate)
app.command("serve")(serve_cmd.serve)


def _version(value: bool) -> None:
    if value:
        from metarec import __version__

        typer.echo(f"metarec {__version__}")
        raise typer.Exit()


PARALLEL_COMMANDS = ("meta-train",)  # the commands that know how to share work under torchrun


@app.callback()
def _root(ctx: typer.Context,
          verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress to stderr."),
          no_progress: bool = typer.Option(False, "--no-progress", help="Hide progress bars."),
          version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    from metarec.core.distributed import launched_size

    if launched_size() > 1 and ctx.invoked_subcommand not in PARALLEL_COMMANDS:
        # every process would run the whole command and write the same files
        from metarec.cli.common import fail
        from metarec.core.errors import ConfigError

        fail(ConfigError(f"`metarec {ctx.invoked_subcommand}` runs in one process; of the commands only "
                         f"{', '.join(PARALLEL_COMMANDS)} runs under torchrun (WORLD_SIZE is {launched_size()})"))
    setup_logging(verbose)
    if no_progress:
        set_progress(False)


def main() -> None:
    """Entry point of the `metarec` command."""
    app()
