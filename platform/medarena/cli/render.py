"""What the commands print: tables, progress bars, and results shaped as JSON.

Results and tables go to standard output (``console``, :func:`echo`); progress bars and events to
standard error (``err_console``), and so does anything else printed while a command runs
(:func:`results_only_on_stdout`), so that ``--format json`` output stays clean to pipe.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    from medarena.arena import SubmissionResult
    from medarena.scoring.boards import Board
    from medarena.scoring.evaluation import EvaluationResult
    from medarena.store import QueueEntry
    from medarena.tasks import TaskSpec
    from medarena.tuning import SweepProgress, TrialRecord

# Piped output (logs, CI) is not cut to 80 columns: leaderboard tables are wide.
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True)


class TableFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


class OutputFormat(StrEnum):
    table = "table"
    json = "json"


FormatOption = Annotated[OutputFormat, typer.Option("--format", help="table or json")]


@contextmanager
def results_only_on_stdout() -> Iterator[None]:
    """While a command runs, its results (what :data:`console` and :func:`echo` print) go to
    stdout and everything else printed there (Ray's notes about its workers, from a thread, at
    any time; libraries' chatter) goes to stderr, so that ``--format json`` stays parseable."""
    results = sys.stdout
    console.file = results
    sys.stdout = sys.stderr
    try:
        yield
    finally:
        sys.stdout = results
        console.file = None  # type: ignore[assignment]  # rich: back to the current sys.stdout


def echo(text: str, *, nl: bool = True) -> None:
    """Print ``text`` as a result (see :func:`results_only_on_stdout`)."""
    typer.echo(text, nl=nl, file=console.file)


def echo_json(value: object, *, indent: int | None = 2) -> None:
    echo(json.dumps(value, indent=indent))


def print_fields(info: Mapping[str, Any], fmt: OutputFormat) -> None:
    """One ``key: value`` line per field, or the JSON object."""
    if fmt is OutputFormat.json:
        echo_json(info)
        return
    for key, value in info.items():
        console.print(f"[bold]{key}[/]: {value}", highlight=False)


def print_leaderboard(board: Board) -> None:
    """A leaderboard as a table: rank, submission (marked when it ran unsandboxed), team, each
    metric with its interval, trials."""
    from rich.table import Table

    spec = board.spec
    metrics = [m.name for m in board.metrics]
    table = Table(title=f"{spec.title} — {spec.name} v{spec.version}", title_justify="left")
    table.add_column("rank", justify="right")
    table.add_column("submission")
    table.add_column("team")
    for name in metrics:
        table.add_column(f"{name} [95% CI]", justify="right")
    table.add_column("trials", justify="right")
    for row in board.records():
        name = row["submission"] + ("" if row["sandboxed"] else " [red](unsandboxed)[/]")
        cells = [str(row["rank"] or "-"), name, row["team"]]
        for name in metrics:
            value, (low, high) = row[name], row[f"{name}_ci"]
            cells.append("-" if value is None else f"{value:.3f} [{low:.3f}, {high:.3f}]")
        cells.append(str(row["trials"]))
        table.add_row(*cells)
    if not board.frame.shape[0]:
        table.caption = "no scored submissions yet"
    console.print(table)


def with_progress(
    label: str,
    *,
    quiet: bool,
    run: Callable[
        [Callable[[str], None], Callable[[TrialRecord, SweepProgress], None]], SubmissionResult
    ],
) -> SubmissionResult:
    """Call ``run(on_stage, on_trial)`` under a live display: trials done of the total, running,
    failed and retried, best validation value so far, elapsed time and ETA."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[state]}"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[eta]}"),
        TextColumn("{task.fields[best]}"),
    ]
    with Progress(*columns, console=err_console, disable=quiet, transient=False) as progress:
        bar = progress.add_task(label, total=None, best="", state="", eta="")
        progress.start_task(bar)

        def on_stage(text: str) -> None:
            progress.update(bar, description=f"{label}: {text}")

        def on_trial(record: TrialRecord, state: SweepProgress) -> None:
            best = "" if math.isnan(state.best_value) else f"best val {state.best_value:.3f}"
            parts = [f"{state.running} running"]
            parts += [f"{n} {what}" for n, what in ((state.failed, "failed"),
                      (state.pruned, "pruned"), (state.retried, "retried")) if n]  # fmt: skip
            eta = "" if math.isnan(state.eta) else f"ETA {state.eta:.0f} s"
            progress.update(
                bar, total=state.total, completed=state.done, best=best,
                state=", ".join(parts), eta=eta,
            )  # fmt: skip
            if record.state == "failed":
                progress.console.print(
                    f"[yellow]trial {record.number} failed:[/] {record.outcome.error}"
                )

        result = run(on_stage, on_trial)
        progress.update(bar, description=f"{label}: scored", state="", eta="")
    return result


def timing_line(result: SubmissionResult) -> str:
    return (
        f"{result.name}: {len(result.trials)} trials on {result.workers} workers in "
        f"{result.sweep_seconds:.1f} s; {result.fit_seconds:.1f} s inside Trainer.fit; "
        f"overhead {result.overhead_per_trial:.2f} worker-s per trial"
    )


def result_json(result: SubmissionResult) -> dict[str, Any]:
    return {
        "submission_id": result.submission_id,
        "task": result.task,
        "submission": result.name,
        "team": result.team,
        "split_hash": result.split_hash,
        "metrics": {
            k: {"value": s.value, "ci": [s.ci_low, s.ci_high]} for k, s in result.scores.items()
        },
        "conventions": result.conventions,
        "best_params": result.best_params,
        "trials": len(result.trials),
        "sweep_seconds": result.sweep_seconds,
        "fit_seconds": result.fit_seconds,
        "workers": result.workers,
        "overhead_per_trial_seconds": result.overhead_per_trial,
        "mlflow_run_id": result.mlflow_run_id,
    }


def print_result(result: SubmissionResult, fmt: OutputFormat) -> None:
    """A scored submission: its test scores with intervals, best parameters, timing, MLflow run."""
    if fmt is OutputFormat.json:
        echo_json(result_json(result))
        return
    for name, score in result.scores.items():
        interval = f"95% CI {score.ci_low:.4f} to {score.ci_high:.4f}"
        console.print(f"test {name}: {score.value:.4f}  ({interval})")
    console.print(f"submission {result.submission_id}; best parameters: {result.best_params}")
    console.print(timing_line(result))
    console.print(f"MLflow run {result.mlflow_run_id}")


def print_event(submission_id: int, status: str, detail: str) -> None:
    """A queue worker's event: a submission started, ended, was handed back, …"""
    err_console.print(f"submission {submission_id}: {status} {detail}", highlight=False)


def print_queue(entries: Sequence[QueueEntry], fmt: OutputFormat) -> None:
    """The queued and running submissions with their place and progress."""
    if fmt is OutputFormat.json:
        echo_json(entries)
        return
    from rich.table import Table

    table = Table(title="Queue", title_justify="left")
    for column in ("id", "task", "submission", "team", "status", "trials", "best val"):
        table.add_column(column)
    for e in entries:
        status = e["status"] + (f" (#{e['place']})" if e["place"] else "")
        best = "" if e["best_value"] is None else f"{e['metric']} {e['best_value']:.3f}"
        trials = f"{e['done']}/{e['total']}"
        table.add_row(
            str(e["submission_id"]), e["task"], e["submission"], e["team"], status, trials, best
        )
    if not entries:
        table.caption = "nothing queued or running"
    console.print(table)


def print_tasks(catalogue_dir: Path, specs: Sequence[TaskSpec], fmt: OutputFormat) -> None:
    """The tasks of a catalogue: name, version, kind, primary metric, title."""
    if fmt is OutputFormat.json:
        rows = [
            {
                "name": s.name,
                "version": s.version,
                "kind": s.kind,
                "title": s.title,
                "primary_metric": s.metrics.primary,
            }
            for s in specs
        ]
        echo_json(rows)
        return
    from rich.table import Table

    table = Table(title=f"Tasks in {catalogue_dir}", title_justify="left")
    for column in ("name", "version", "kind", "primary metric", "title"):
        table.add_column(column)
    for s in specs:
        table.add_row(s.name, str(s.version), s.kind, s.metrics.primary, s.title)
    console.print(table)


def print_evaluation(result: EvaluationResult, predictions: Path, fmt: OutputFormat) -> None:
    """Scores of prediction files: each metric with its interval, the conventions applied, and
    the cases without predictions."""
    if fmt is OutputFormat.json:
        echo_json(result.to_dict())
        return
    from rich.table import Table

    table = Table(title=f"{result.kind} evaluation of {predictions}", title_justify="left")
    for column in ("metric", "value", "95% CI"):
        table.add_column(column)
    for name, metric in result.metrics.items():
        low, high = metric.ci
        table.add_row(name, f"{metric.value:.4f}", f"[{low:.4f}, {high:.4f}]")
    console.print(table)
    conventions = ", ".join(f"{k}={v}" for k, v in result.conventions.items())
    console.print(f"conventions: {conventions}", highlight=False)
    if result.missing_cases:
        shown = ", ".join(result.missing_cases[:10])
        more = len(result.missing_cases) - 10
        console.print(
            f"[yellow]{len(result.missing_cases)} case(s) without predictions, scored by the "
            f"worst-case policy[/]: {shown}" + (f" and {more} more" if more > 0 else ""),
            highlight=False,
        )
