"""Submissions: ``submit``, ``resume``, ``progress``, ``queue``, ``cancel`` and ``worker``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from medarena.cli.errors import command_settings, errors
from medarena.cli.render import (
    FormatOption,
    OutputFormat,
    console,
    echo_json,
    print_event,
    print_fields,
    print_queue,
    print_result,
    with_progress,
)
from medarena.cli.resources import open_arena, open_store
from medarena.exceptions import UserError

if TYPE_CHECKING:
    from medarena.arena import Arena, SubmissionResult


def run_submission(
    arena: Arena, path: Path, task: str, *, trials: int | None, team: str, quiet: bool
) -> SubmissionResult:
    """Run one submission with a live progress bar (unless ``quiet``)."""
    return with_progress(
        f"{path.name} on {task}",
        quiet=quiet,
        run=lambda on_stage, on_trial: arena.submit(
            path, task, trials=trials, team=team, on_stage=on_stage, on_trial=on_trial
        ),
    )


def submit(
    path: Annotated[
        Path,
        typer.Argument(help="the submission folder (with submission.yaml) or a .zip/.tar.gz of it"),
    ],
    task: Annotated[str, typer.Option("--task", help="the task's name")],
    trials: Annotated[
        int | None, typer.Option(help="number of trials (default: the task's budget)")
    ] = None,
    team: Annotated[str, typer.Option(help="the team submitting")] = "anonymous",
    queue: Annotated[
        bool,
        typer.Option("--queue", help="validate and queue it for `medarena worker`; return at once"),
    ] = False,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Validate a submission, run the task's search on it, score it and record it."""
    from medarena.store import Status

    settings = command_settings()
    with errors(settings):
        with open_arena(settings) as arena:
            if queue:
                submission_id = arena.enqueue(path, task, trials=trials, team=team)
                if fmt is OutputFormat.json:
                    echo_json(
                        {"submission_id": submission_id, "status": Status.QUEUED.value},
                        indent=None,
                    )
                else:
                    console.print(f"submission {submission_id} queued", highlight=False)
                return
            result = run_submission(
                arena, path, task, trials=trials, team=team, quiet=fmt is OutputFormat.json
            )
        print_result(result, fmt)


def resume(
    submission_id: Annotated[int, typer.Argument(help="the submission's id")],
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Continue a submission whose run was interrupted: finished trials are kept, not re-run."""
    settings = command_settings()
    with errors(settings):
        with open_arena(settings) as arena:
            result = with_progress(
                f"submission {submission_id}",
                quiet=fmt is OutputFormat.json,
                run=lambda on_stage, on_trial: arena.resume(
                    submission_id, on_stage=on_stage, on_trial=on_trial
                ),
            )
        print_result(result, fmt)


def progress(
    submission_id: Annotated[int, typer.Argument(help="the submission's id")],
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Where a submission stands: status, trials done of the total, best validation value."""
    settings = command_settings()
    with errors(settings):
        with open_store(settings) as store:
            try:
                state = store.progress(submission_id)
            except KeyError:
                raise UserError(f"there is no submission {submission_id}") from None
        print_fields(state, fmt)


def queue_(fmt: FormatOption = OutputFormat.table) -> None:
    """List the queued and running submissions, oldest first, with their progress."""
    settings = command_settings()
    with errors(settings):
        with open_store(settings) as store:
            entries = store.queue()
        print_queue(entries, fmt)


def cancel(submission_id: Annotated[int, typer.Argument(help="the submission's id")]) -> None:
    """Cancel a queued submission, or stop a running one (its finished trials are kept)."""
    from medarena.store import Status

    settings = command_settings()
    with errors(settings):
        with open_arena(settings) as arena:
            status = arena.cancel(submission_id)
        what = (
            "cancelled"
            if status is Status.CANCELLED
            else f"{status}: its driver stops it within seconds"
        )
        console.print(f"submission {submission_id} {what}", highlight=False)


def worker(
    exit_when_idle: Annotated[
        bool, typer.Option("--exit-when-idle", help="return once the queue is empty")
    ] = False,
    poll: Annotated[
        float, typer.Option(help="seconds between looks at the queue and at cancellations")
    ] = 1.0,
    stale_after: Annotated[
        float,
        typer.Option(
            help="take over a running submission whose driver was silent this many seconds "
            "(killed, or its machine lost)"
        ),
    ] = 60.0,
) -> None:
    """Run queued submissions (several at once, sharing the workers fairly) until stopped;
    stopped (Ctrl-C, SIGTERM), it hands its running submissions back to the queue. It also takes
    over running submissions whose driver died (silent for --stale-after seconds)."""
    settings = command_settings()
    with errors(settings):
        with open_arena(settings, stale_after_s=stale_after) as arena:
            ended = arena.work(exit_when_idle=exit_when_idle, poll_s=poll, on_event=print_event)
        console.print(f"the queue is empty; submissions finished: {ended}", highlight=False)
