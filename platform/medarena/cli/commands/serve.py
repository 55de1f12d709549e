"""``serve``: the web leaderboard and REST API, with the submission queue beside it."""

from __future__ import annotations

import signal
from contextlib import nullcontext
from typing import Annotated

import typer

from medarena.cli.errors import command_settings, errors
from medarena.cli.render import console
from medarena.cli.supervisor import queue_worker


def serve(
    host: Annotated[str, typer.Option(help="the address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="the port to listen on (0: any free port)")] = 8000,
    queue: Annotated[
        bool,
        typer.Option(
            "--queue/--no-queue",
            help="also run the submission queue (`medarena worker`) in a child process; "
            "--no-queue where workers run elsewhere",
        ),
    ] = True,
) -> None:
    """Serve the web leaderboard and the REST API (API documentation at /docs), and run the
    submission queue. SIGTERM (docker stop, systemd, Kubernetes) stops it as Ctrl-C does: the
    server shuts down, then the queue worker hands its submissions back."""
    settings = command_settings()
    stopped_by = signal.SIGINT

    def on_sigterm(signum: int, frame: object) -> None:
        # uvicorn shuts down gracefully on SIGTERM, then raises it again: without this, Python's
        # default action would end the process there, with the queue worker still running.
        nonlocal stopped_by
        stopped_by = signal.SIGTERM
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        with errors(settings):
            import uvicorn

            from medarena_leaderboard.app import app_from_settings

            web = app_from_settings()
            console.print(f"MedArena leaderboard on http://{host}:{port}/ (API docs at /docs)")
            worker = queue_worker(settings, lambda: stopped_by) if queue else nullcontext()
            with worker:
                uvicorn.run(web, host=host, port=port)
    finally:
        signal.signal(signal.SIGTERM, previous)
