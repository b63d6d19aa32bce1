"""`metarec serve`: the HTTP app of metarec.serve under uvicorn, over a model loaded once."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Optional

import typer

from metarec.cli.common import RetrievalMinOpt, RetrievalOpt, err_console, fail, load_model
from metarec.core.errors import ConfigError, MetarecError
from metarec.models.retrieval import RetrievalConfig


def serve(
    model: Path = typer.Option(..., "--model", help="Folder written by `metarec meta-train`."),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(8000, help="TCP port."),
    device: str = typer.Option("cpu", help="Where to adapt and score: cpu, cuda, cuda:N or auto."),
    max_request_bytes: int = typer.Option(4 * 1024 * 1024, help="Largest request body accepted (else 413)."),
    batch_wait_ms: float = typer.Option(2.0, help="How long the first of concurrent requests waits for others to "
                                        "be adapted with it in one batch (0: no batching)."),
    db: str = typer.Option("metarec-users.sqlite", help="SQLite file where /users keeps profiles and events "
                           "(':memory:': forget them on exit)."),
    api_key: Optional[str] = typer.Option(None, envvar="METAREC_API_KEY", help="Require the header X-API-Key with "
                                          "this value on every endpoint but /health and /docs."),
    retrieval: RetrievalOpt = "auto",
    retrieval_min_items: RetrievalMinOpt = RetrievalConfig.min_items,
) -> None:
    """Serve one model over HTTP: /recommend, /recommend/batch, /score, the /users endpoints, /health (docs at /docs)."""
    try:
        if not (model / "config.json").is_file():
            raise ConfigError(f"{model}: no config.json here; expected a folder written by `metarec meta-train`")
        try:
            import uvicorn

            from metarec.serve.app import ServeLimits, create_app
        except ModuleNotFoundError:
            raise ConfigError("serving needs fastapi and uvicorn: pip install 'metarec[serve]'") from None
        # loaded here, once: a damaged or foreign model folder is one error line (exit 2) before the
        # server starts, not a traceback from inside uvicorn
        app = create_app(load_model(model, device, retrieval, retrieval_min_items), limits=ServeLimits(max_request_bytes=max_request_bytes,
                                                                                  batch_wait_ms=batch_wait_ms),
                         store=db, api_key=api_key or None)
    except MetarecError as e:
        fail(e)
    if not _loopback(host) and not api_key:
        err_console.print(f"[yellow]note:[/yellow] serving on {host} without --api-key: every machine that reaches it "
                          "can read and change the users it keeps", highlight=False)
    uvicorn.run(app, host=host, port=port)


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
