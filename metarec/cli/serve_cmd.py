"""`metarec serve`: the HTTP app of metarec.serve under uvicorn.

The CLI and the serve layer do not import each other: uvicorn is handed the app factory by name,
and the model folder and device through the environment the factory reads.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

from metarec.cli.common import fail
from metarec.core.device import resolve_device
from metarec.core.errors import ConfigError, MetarecError


def serve(
    model: Path = typer.Option(..., "--model", help="Folder written by `metarec meta-train`."),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(8000, help="TCP port."),
    device: str = typer.Option("cpu", help="Where to adapt and score: cpu, cuda, cuda:N or auto."),
) -> None:
    """Serve POST /recommend, POST /recommend/batch, POST /score and GET /health for one model (docs at /docs)."""
    try:
        if not (model / "config.json").is_file():
            raise ConfigError(f"{model}: no config.json here; expected a folder written by `metarec meta-train`")
        resolve_device(device)
        try:
            import uvicorn
        except ModuleNotFoundError:
            raise ConfigError("serving needs fastapi and uvicorn: pip install 'metarec[serve]'") from None
        # read once here (on the CPU: the app loads it again onto `device`), so a damaged or foreign
        # model folder is one error line (exit 2) before the server starts, not a traceback from
        # inside uvicorn's app factory
        from metarec.meta.recommender import MetaRecommender

        MetaRecommender.load(model)
    except MetarecError as e:
        fail(e)
    os.environ["METAREC_MODEL"], os.environ["METAREC_DEVICE"] = str(model), device
    uvicorn.run("metarec.serve.app:create_app", factory=True, host=host, port=port)
