"""Leaderboards: ``leaderboard``, and ``demo`` (the baselines on the demo tasks)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer

from medarena.cli.commands.submissions import run_submission
from medarena.cli.errors import command_settings, errors
from medarena.cli.render import (
    TableFormat,
    console,
    echo,
    echo_json,
    err_console,
    print_leaderboard,
    timing_line,
)
from medarena.cli.resources import open_arena

if TYPE_CHECKING:
    from medarena.arena import Arena, SubmissionResult

DEMO = {
    "ct-liver-lesions": ["small-cnn", "logistic-regression"],
    "ct-organs-2d": ["unet", "shallow-fcn"],
    "lung-nodules": ["heatmap-unet", "blob-cnn"],
}
"""The demo's tasks and the baselines it runs on each."""


def show_leaderboard(arena: Arena, task: str, fmt: TableFormat) -> None:
    board = arena.board(task)
    if fmt is TableFormat.json:
        echo_json(board.records())
    elif fmt is TableFormat.csv:
        echo(board.frame.to_csv(index=False), nl=False)
    else:
        print_leaderboard(board)


def leaderboard(
    task: Annotated[str, typer.Argument(help="the task's name")],
    fmt: Annotated[
        TableFormat, typer.Option("--format", help="table, json or csv")
    ] = TableFormat.table,
) -> None:
    """Print a task's leaderboard, ranked by its primary metric."""
    settings = command_settings()
    with errors(settings), open_arena(settings) as arena:
        show_leaderboard(arena, task, fmt)


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

    settings = command_settings()
    with errors(settings):
        start = time.perf_counter()
        support = sandbox_support()
        if not support.available and not settings.allow_unsandboxed:
            err_console.print(
                f"[yellow]no sandbox can run here ({support.reason}); the demo runs its own "
                "baselines unsandboxed[/]"
            )
            settings = settings.model_copy(update={"allow_unsandboxed": True})
        with open_arena(settings) as arena:
            results: list[SubmissionResult] = []
            task_seconds: dict[str, float] = {}
            for task, names in DEMO.items():
                task_start = time.perf_counter()
                for name in names:
                    path = settings.baselines_dir / name
                    results.append(
                        run_submission(
                            arena, path, task, trials=trials, team="baselines", quiet=False
                        )
                    )
                task_seconds[task] = time.perf_counter() - task_start
            for task in DEMO:
                show_leaderboard(arena, task, TableFormat.table)
            for result in results:
                console.print(timing_line(result), highlight=False)
            for task, seconds in task_seconds.items():
                console.print(
                    f"{task}: {len(DEMO[task])} submissions in {seconds:.0f} s (data, workers, "
                    "dry runs, sweeps, scoring)",
                    highlight=False,
                )
        uri = settings.tracking_uri
        console.print(f"\nDemo finished in {time.perf_counter() - start:.0f} s.")
        console.print(f"MLflow runs are in {uri}; to browse them:")
        console.print(f"  mlflow ui --backend-store-uri {uri}", highlight=False)
