"""The ``medarena`` command line.

Heavy libraries are imported inside the commands, so ``medarena --help`` answers at once. User
errors print one clear message and exit with status 2; the platform's own errors are logged in
full to ``$MEDARENA_HOME/logs/medarena.log`` and exit with status 1. The state folder and
everything the command line creates in it are the owner's only (folders 0700, files 0600).
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from medarena.exceptions import UserError
from medarena.settings import OWNER_ONLY_UMASK, Settings, secure_home

if TYPE_CHECKING:
    import pandas as pd

    from medarena.arena import Arena, SubmissionResult
    from medarena.tuning import SweepProgress, TrialRecord

app = typer.Typer(
    help="MedArena: train, search and score submitted models on medical imaging tasks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
tasks_app = typer.Typer(help="The task catalogue.", no_args_is_help=True)
app.add_typer(tasks_app, name="tasks")

# Piped output (logs, CI) is not cut to 80 columns: leaderboard tables are wide.
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True)
log = logging.getLogger("medarena")

DEMO = {
    "ct-liver-lesions": ["small-cnn", "logistic-regression"],
    "ct-organs-2d": ["unet", "shallow-fcn"],
    "lung-nodules": ["heatmap-unet", "blob-cnn"],
}


class TableFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


class OutputFormat(StrEnum):
    table = "table"
    json = "json"


FormatOption = Annotated[OutputFormat, typer.Option("--format", help="table or json")]


def _log_file(settings: Settings) -> Path:
    path = settings.home.resolve() / "logs" / "medarena.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def _errors(settings: Settings) -> Iterator[None]:
    """Make the state folder owner-only, then run the command: user errors become a message and
    exit 2; anything else is logged in full and exits 1."""
    try:
        secure_home(settings.home)
        yield
    except UserError as exc:
        err_console.print(
            f"[bold red]error:[/] {exc}", highlight=False, markup=True, soft_wrap=True
        )
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        err_console.print("interrupted")
        raise typer.Exit(130) from None
    except Exception:
        path = _log_file(settings)
        handler = logging.FileHandler(path)
        log.addHandler(handler)
        log.exception("unexpected error in: %s", " ".join(sys.argv))
        log.removeHandler(handler)
        err_console.print(
            f"[bold red]an unexpected error occurred[/]; the details are logged in {path}"
        )
        raise typer.Exit(1) from None


def _arena(settings: Settings, *, stale_after_s: float | None = None) -> Arena:
    from medarena.arena import Arena, ArenaConfig

    config = ArenaConfig(
        catalogue_dir=settings.catalogue_dir,
        cache_dir=settings.cache_dir,
        db_url=settings.leaderboard_url,
        study_url=settings.optuna_url,
        tracking_uri=settings.tracking_uri,
        ray_address=settings.ray_address,
        artifacts_dir=settings.home.resolve() / "artifacts",
        allow_unsandboxed=settings.allow_unsandboxed,
    )
    if stale_after_s is not None:
        config = replace(config, stale_after_s=stale_after_s)
    return Arena(config)


def _leaderboard_records(frame: pd.DataFrame, metrics: list[str]) -> list[dict[str, Any]]:
    """JSON rows: rank, submission, team, trials, and per metric its value and interval."""
    from medarena.scoring.ranking import leaderboard_records

    return leaderboard_records(frame, metrics)


def _print_leaderboard(title: str, frame: pd.DataFrame, metrics: list[str]) -> None:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column("rank", justify="right")
    table.add_column("submission")
    table.add_column("team")
    for name in metrics:
        table.add_column(f"{name} [95% CI]", justify="right")
    table.add_column("trials", justify="right")
    for row in _leaderboard_records(frame, metrics):
        name = row["submission"] + ("" if row["sandboxed"] else " [red](unsandboxed)[/]")
        cells = [str(row["rank"] or "-"), name, row["team"]]
        for name in metrics:
            value, (low, high) = row[name], row[f"{name}_ci"]
            cells.append("-" if value is None else f"{value:.3f} [{low:.3f}, {high:.3f}]")
        cells.append(str(row["trials"]))
        table.add_row(*cells)
    if not frame.shape[0]:
        table.caption = "no scored submissions yet"
    console.print(table)


def _show_leaderboard(arena: Arena, task: str, fmt: TableFormat) -> None:
    spec = arena.catalogue.get(task)
    frame = arena.leaderboard(task)
    metrics = spec.metrics.names
    if fmt is TableFormat.json:
        typer.echo(json.dumps(_leaderboard_records(frame, metrics), indent=2))
    elif fmt is TableFormat.csv:
        typer.echo(frame.to_csv(index=False), nl=False)
    else:
        _print_leaderboard(f"{spec.title} — {spec.name} v{spec.version}", frame, metrics)


def _run_submission(
    arena: Arena, path: Path, task: str, *, trials: int | None, team: str, quiet: bool
) -> SubmissionResult:
    """Run one submission with a live progress bar (unless ``quiet``)."""
    return _with_progress(
        f"{path.name} on {task}",
        quiet=quiet,
        run=lambda on_stage, on_trial: arena.submit(
            path, task, trials=trials, team=team, on_stage=on_stage, on_trial=on_trial
        ),
    )


def _with_progress(
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


def _timing_line(result: SubmissionResult) -> str:
    return (
        f"{result.name}: {len(result.trials)} trials on {result.workers} workers in "
        f"{result.sweep_seconds:.1f} s; {result.fit_seconds:.1f} s inside Trainer.fit; "
        f"overhead {result.overhead_per_trial:.2f} worker-s per trial"
    )


def _result_json(result: SubmissionResult) -> dict[str, Any]:
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


@app.command()
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
    settings = Settings()
    with _errors(settings):
        arena = _arena(settings)
        if queue:
            submission_id = arena.enqueue(path, task, trials=trials, team=team)
            if fmt is OutputFormat.json:
                typer.echo(json.dumps({"submission_id": submission_id, "status": "queued"}))
            else:
                console.print(f"submission {submission_id} queued", highlight=False)
            return
        try:
            result = _run_submission(
                arena, path, task, trials=trials, team=team, quiet=fmt is OutputFormat.json
            )
        finally:
            arena.close()
        _print_result(result, fmt)


def _print_result(result: SubmissionResult, fmt: OutputFormat) -> None:
    if fmt is OutputFormat.json:
        typer.echo(json.dumps(_result_json(result), indent=2))
        return
    for name, score in result.scores.items():
        interval = f"95% CI {score.ci_low:.4f} to {score.ci_high:.4f}"
        console.print(f"test {name}: {score.value:.4f}  ({interval})")
    console.print(f"submission {result.submission_id}; best parameters: {result.best_params}")
    console.print(_timing_line(result))
    console.print(f"MLflow run {result.mlflow_run_id}")


@app.command()
def resume(
    submission_id: Annotated[int, typer.Argument(help="the submission's id")],
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Continue a submission whose run was interrupted: finished trials are kept, not re-run."""
    settings = Settings()
    with _errors(settings):
        arena = _arena(settings)
        try:
            result = _with_progress(
                f"submission {submission_id}",
                quiet=fmt is OutputFormat.json,
                run=lambda on_stage, on_trial: arena.resume(
                    submission_id, on_stage=on_stage, on_trial=on_trial
                ),
            )
        finally:
            arena.close()
        _print_result(result, fmt)


@app.command()
def progress(
    submission_id: Annotated[int, typer.Argument(help="the submission's id")],
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Where a submission stands: status, trials done of the total, best validation value."""
    settings = Settings()
    with _errors(settings):
        from medarena.store import Store

        state = Store(settings.leaderboard_url).progress(submission_id)
        if fmt is OutputFormat.json:
            typer.echo(json.dumps(state, indent=2))
            return
        for key, value in state.items():
            console.print(f"[bold]{key}[/]: {value}", highlight=False)


@app.command("queue")
def queue_(fmt: FormatOption = OutputFormat.table) -> None:
    """List the queued and running submissions, oldest first, with their progress."""
    settings = Settings()
    with _errors(settings):
        from medarena.store import Store

        entries = Store(settings.leaderboard_url).queue()
        if fmt is OutputFormat.json:
            typer.echo(json.dumps(entries, indent=2))
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


@app.command()
def cancel(submission_id: Annotated[int, typer.Argument(help="the submission's id")]) -> None:
    """Cancel a queued submission, or stop a running one (its finished trials are kept)."""
    settings = Settings()
    with _errors(settings):
        status = _arena(settings).cancel(submission_id)
        what = (
            "cancelled"
            if status == "cancelled"
            else f"{status}: its driver stops it within seconds"
        )
        console.print(f"submission {submission_id} {what}", highlight=False)


@app.command()
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
    settings = Settings()
    with _errors(settings):
        arena = _arena(settings, stale_after_s=stale_after)

        def on_event(submission_id: int, status: str, detail: str) -> None:
            err_console.print(f"submission {submission_id}: {status} {detail}", highlight=False)

        try:
            ended = arena.work(exit_when_idle=exit_when_idle, poll_s=poll, on_event=on_event)
        finally:
            arena.close()
        console.print(f"the queue is empty; submissions finished: {ended}", highlight=False)


@app.command()
def leaderboard(
    task: Annotated[str, typer.Argument(help="the task's name")],
    fmt: Annotated[
        TableFormat, typer.Option("--format", help="table, json or csv")
    ] = TableFormat.table,
) -> None:
    """Print a task's leaderboard, ranked by its primary metric."""
    settings = Settings()
    with _errors(settings):
        _show_leaderboard(_arena(settings), task, fmt)


@app.command()
def demo(
    trials: Annotated[
        int | None, typer.Option(help="trials per submission (default: the task's budget)")
    ] = None,
) -> None:
    """Run the baseline submissions on the demo tasks and print the leaderboards.

    The baselines are the platform's own code: where no sandbox can run, the demo runs them
    unsandboxed (and says so) rather than refusing them.
    """
    from medarena.sandbox import sandbox_support

    settings = Settings()
    with _errors(settings):
        start = time.perf_counter()
        support = sandbox_support()
        if not support.available and not settings.allow_unsandboxed:
            err_console.print(
                f"[yellow]no sandbox can run here ({support.reason}); the demo runs its own "
                "baselines unsandboxed[/]"
            )
            settings = settings.model_copy(update={"allow_unsandboxed": True})
        arena = _arena(settings)
        try:
            results: list[SubmissionResult] = []
            task_seconds: dict[str, float] = {}
            for task, names in DEMO.items():
                task_start = time.perf_counter()
                for name in names:
                    path = settings.baselines_dir / name
                    results.append(
                        _run_submission(
                            arena, path, task, trials=trials, team="baselines", quiet=False
                        )
                    )
                task_seconds[task] = time.perf_counter() - task_start
            for task in DEMO:
                _show_leaderboard(arena, task, TableFormat.table)
            for result in results:
                console.print(_timing_line(result), highlight=False)
            for task, seconds in task_seconds.items():
                console.print(
                    f"{task}: {len(DEMO[task])} submissions in {seconds:.0f} s (data, workers, "
                    "dry runs, sweeps, scoring)",
                    highlight=False,
                )
        finally:
            arena.close()
        uri = settings.tracking_uri
        console.print(f"\nDemo finished in {time.perf_counter() - start:.0f} s.")
        console.print(f"MLflow runs are in {uri}; to browse them:")
        console.print(f"  mlflow ui --backend-store-uri {uri}", highlight=False)


@tasks_app.command("list")
def tasks_list(fmt: FormatOption = OutputFormat.table) -> None:
    """List the tasks in the catalogue."""
    settings = Settings()
    with _errors(settings):
        from medarena.tasks import TaskCatalogue

        specs = TaskCatalogue(settings.catalogue_dir).specs()
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
            typer.echo(json.dumps(rows, indent=2))
            return
        from rich.table import Table

        table = Table(title=f"Tasks in {settings.catalogue_dir}", title_justify="left")
        for column in ("name", "version", "kind", "primary metric", "title"):
            table.add_column(column)
        for s in specs:
            table.add_row(s.name, str(s.version), s.kind, s.metrics.primary, s.title)
        console.print(table)


@tasks_app.command("prepare")
def tasks_prepare(name: Annotated[str, typer.Argument(help="the task's name")]) -> None:
    """Read a task's data, check it, fix its split and write the cache (with a progress bar)."""
    settings = Settings()
    with _errors(settings):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        from medarena.tasks import TaskCatalogue, load_task_data
        from medarena.tasks.progress import listening

        spec = TaskCatalogue(settings.catalogue_dir).get(name)
        columns = [
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        ]
        with Progress(*columns, console=err_console) as progress:
            bar = progress.add_task(f"reading {spec.name}", total=None)
            with listening(lambda done, total: progress.update(bar, completed=done, total=total)):
                data = load_task_data(spec, cache_dir=settings.cache_dir)
        sizes = ", ".join(f"{split} {data.size(split)}" for split in ("train", "val", "test"))
        console.print(f"{spec.name}: {len(data.arrays.case_ids)} cases ({sizes})", highlight=False)
        console.print(f"split hash {data.split_hash}; cached in {settings.cache_dir}")


@tasks_app.command("show")
def tasks_show(
    name: Annotated[str, typer.Argument(help="the task's name")],
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Show a task: kind, split sizes, metrics, budget and split hash."""
    settings = Settings()
    with _errors(settings):
        from medarena.tasks import TaskCatalogue, load_task_data

        spec = TaskCatalogue(settings.catalogue_dir).get(name)
        data = load_task_data(spec, cache_dir=settings.cache_dir)
        info = {
            "name": spec.name,
            "version": spec.version,
            "kind": spec.kind,
            "title": spec.title,
            "classes": spec.classes,
            "sizes": {split: data.size(split) for split in ("train", "val", "test")},
            "metrics": spec.metrics.names,
            "primary_metric": spec.metrics.primary,
            "budget": spec.budget.model_dump(),
            "split_hash": data.split_hash,
        }
        if fmt is OutputFormat.json:
            typer.echo(json.dumps(info, indent=2))
            return
        for key, value in info.items():
            console.print(f"[bold]{key}[/]: {value}", highlight=False)


class EvaluationKind(StrEnum):
    classification = "classification"
    segmentation = "segmentation"
    detection = "detection"


@app.command()
def evaluate(
    kind: Annotated[
        EvaluationKind, typer.Option("--kind", help="classification, segmentation or detection")
    ],
    reference: Annotated[
        Path,
        typer.Option(
            "--reference", help="labels: CSV, folder of label maps, or LUNA16 annotations CSV"
        ),
    ],
    predictions: Annotated[
        Path,
        typer.Option(
            "--predictions",
            help="probabilities CSV, folder of label maps, or LUNA16 candidates CSV",
        ),
    ],
    cases: Annotated[
        Path | None, typer.Option("--cases", help="the cases (scans) to score, one id per line")
    ] = None,
    excluded: Annotated[
        Path | None, typer.Option("--excluded", help="detection: LUNA16 annotations_excluded.csv")
    ] = None,
    bootstrap: Annotated[
        int, typer.Option("--bootstrap", help="bootstrap samples for the intervals")
    ] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="bootstrap seed")] = 0,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Score prediction files like a challenge's evaluation script (see docs/metrics.md)."""
    settings = Settings()
    with _errors(settings):
        from medarena.scoring.evaluation import evaluate as run_evaluation

        result = run_evaluation(
            kind.value,
            reference,
            predictions,
            cases=cases,
            excluded=excluded,
            n_bootstrap=bootstrap,
            seed=seed,
        )
        if fmt is OutputFormat.json:
            typer.echo(json.dumps(result.to_dict(), indent=2))
            return
        from rich.table import Table

        table = Table(title=f"{kind.value} evaluation of {predictions}", title_justify="left")
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


WORKER_STOP_TIMEOUT_S = 60.0
"""How long ``serve`` waits for its queue worker to hand its submissions back before killing it."""

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` asking Linux to send the child SIGTERM when this process dies, even by
    SIGKILL (``prctl(PR_SET_PDEATHSIG)``); ``None`` elsewhere. Linux sends it when the *thread*
    that started the child ends: start the child from the main thread."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here, not in the forked child
    parent = os.getpid()

    def preexec() -> None:
        if prctl(PR_SET_PDEATHSIG, signal.SIGTERM) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent:  # the parent died before the request: nobody would ask
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


@contextmanager
def _queue_worker(settings: Settings, stop_signal: Callable[[], int]) -> Iterator[None]:
    """Run ``medarena worker`` beside the web app, in a child process (the web app stays free of
    Ray and of the task data), with its output in ``$MEDARENA_HOME/logs/worker.log``. When the web
    app stops, pass on the signal that stopped it (``stop_signal()``: SIGINT or SIGTERM) and wait
    for the worker to hand its running submissions back; if this process is killed instead, the
    kernel sends the worker SIGTERM (Linux)."""
    import subprocess

    path = _log_file(settings).with_name("worker.log")
    with path.open("a") as log_file:
        child = subprocess.Popen(
            [sys.executable, "-m", "medarena", "worker"],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C reaches it once, from here, not from the terminal
            preexec_fn=_die_with_parent(),
        )
        console.print(f"queue worker: pid {child.pid}, log in {path}", highlight=False)
        try:
            yield
        finally:
            if child.poll() is None:
                child.send_signal(stop_signal())
                try:
                    child.wait(timeout=WORKER_STOP_TIMEOUT_S)
                except (subprocess.TimeoutExpired, KeyboardInterrupt):  # or stopped again
                    child.kill()
                    child.wait()
            console.print(f"queue worker stopped (exit code {child.returncode})", highlight=False)


@app.command()
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
    settings = Settings()
    stopped_by = signal.SIGINT

    def on_sigterm(signum: int, frame: object) -> None:
        # uvicorn shuts down gracefully on SIGTERM, then raises it again: without this, Python's
        # default action would end the process there, with the queue worker still running.
        nonlocal stopped_by
        stopped_by = signal.SIGTERM
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        with _errors(settings):
            import uvicorn

            from medarena_leaderboard.app import app_from_settings

            web = app_from_settings()
            console.print(f"MedArena leaderboard on http://{host}:{port}/ (API docs at /docs)")
            worker = _queue_worker(settings, lambda: stopped_by) if queue else nullcontext()
            with worker:
                uvicorn.run(web, host=host, port=port)
    finally:
        signal.signal(signal.SIGTERM, previous)


def main() -> None:
    """Entry point of the ``medarena`` console script; what it creates (and what the processes it
    starts create: the queue worker, a local Ray) is the owner's only."""
    os.umask(OWNER_ONLY_UMASK)
    app()
