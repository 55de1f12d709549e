"""The task catalogue: ``tasks list``, ``tasks prepare`` and ``tasks show``."""

from __future__ import annotations

from typing import Annotated

import typer

from medarena.cli.errors import command_settings, errors
from medarena.cli.render import (
    FormatOption,
    OutputFormat,
    console,
    err_console,
    print_fields,
    print_tasks,
)

NameArgument = Annotated[str, typer.Argument(help="the task's name")]


def tasks_list(fmt: FormatOption = OutputFormat.table) -> None:
    """List the tasks in the catalogue."""
    settings = command_settings()
    with errors(settings):
        from medarena.tasks import TaskCatalogue

        specs = TaskCatalogue(settings.catalogue_dir).specs()
        print_tasks(settings.catalogue_dir, specs, fmt)


def tasks_prepare(name: NameArgument) -> None:
    """Read a task's data, check it, fix its split and write the cache (with a progress bar)."""
    settings = command_settings()
    with errors(settings):
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


def tasks_show(name: NameArgument, fmt: FormatOption = OutputFormat.table) -> None:
    """Show a task: kind, split sizes, metrics, budget and split hash."""
    settings = command_settings()
    with errors(settings):
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
        print_fields(info, fmt)
