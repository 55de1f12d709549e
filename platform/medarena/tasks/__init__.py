"""Task definitions: the declarative spec, the catalogue, dataset readers and fixed splits."""

from __future__ import annotations

from medarena.tasks.data import TaskData, WorkerData, load_task_data
from medarena.tasks.registry import TaskCatalogue
from medarena.tasks.spec import Budget, TaskSpec, load_task_spec

__all__ = [
    "Budget",
    "TaskCatalogue",
    "TaskData",
    "TaskSpec",
    "WorkerData",
    "load_task_data",
    "load_task_spec",
]
