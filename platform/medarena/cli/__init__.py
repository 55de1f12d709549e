"""The ``medarena`` command line.

Heavy libraries are imported inside the commands, so ``medarena --help`` answers at once. User
errors print one clear message and exit with status 2; the platform's own errors are logged in
full to ``$MEDARENA_HOME/logs/medarena.log`` and exit with status 1. The state folder and
everything the command line creates in it are the owner's only (folders 0700, files 0600).

Here the app and its commands are put together; the commands live in ``commands/`` (one module
per group), what they print in ``render``, the handling of their errors in ``errors``, the Arena
and Store they open (and close) in ``resources``, and the queue worker ``serve`` runs beside the
web app in ``supervisor``.
"""

from __future__ import annotations

import io
import os
import sys

import typer

from medarena.cli.commands import boards, evaluation, serve, submissions, tasks
from medarena.cli.render import results_only_on_stdout
from medarena.settings import OWNER_ONLY_UMASK

__all__ = ["app", "main"]

app = typer.Typer(
    help="MedArena: train, search and score submitted models on medical imaging tasks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _results_only_on_stdout(ctx: typer.Context) -> None:
    """(every command) stdout carries the command's results only; see render."""
    ctx.with_resource(results_only_on_stdout())


tasks_app = typer.Typer(help="The task catalogue.", no_args_is_help=True)
app.add_typer(tasks_app, name="tasks")

# In this order in `medarena --help`.
app.command()(submissions.submit)
app.command()(submissions.resume)
app.command()(submissions.progress)
app.command("queue")(submissions.queue_)
app.command()(submissions.cancel)
app.command()(submissions.worker)
app.command()(boards.leaderboard)
app.command()(boards.demo)
tasks_app.command("list")(tasks.tasks_list)
tasks_app.command("prepare")(tasks.tasks_prepare)
tasks_app.command("show")(tasks.tasks_show)
app.command()(evaluation.evaluate)
app.command()(serve.serve)


def main() -> None:
    """Entry point of the ``medarena`` console script; what it creates (and what the processes it
    starts create: the queue worker, a local Ray) is the owner's only."""
    os.umask(OWNER_ONLY_UMASK)
    for stream in (sys.stdout, sys.stderr):  # an ASCII terminal (LC_ALL=C) gets '?' for '—'
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="replace")
    app()
