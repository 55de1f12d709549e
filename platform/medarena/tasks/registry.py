"""The task catalogue: a folder of ``<task>/task.yaml`` files."""

from __future__ import annotations

from pathlib import Path

from medarena.exceptions import TaskNotFoundError, TaskSpecError
from medarena.tasks.spec import TaskSpec, load_task_spec


class TaskCatalogue:
    """The tasks defined under ``root``, each in a folder named after the task."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.parent.name for p in self.root.glob("*/task.yaml"))

    def get(self, name: str) -> TaskSpec:
        """The task called ``name``; an unknown name lists the known ones. Only a folder
        directly in the catalogue is a task (``..`` or a path is an unknown name)."""
        path = self.root / name / "task.yaml"
        if name not in self.names():
            known = ", ".join(self.names()) or "(none)"
            raise TaskNotFoundError(
                f"unknown task {name!r}; known tasks in {self.root}: {known}. "
                "See `medarena tasks list`."
            )
        spec = load_task_spec(path)
        if spec.name != name:
            raise TaskSpecError(
                f"{path}: field 'name' is {spec.name!r}, but the folder is {name!r}"
            )
        return spec

    def specs(self) -> list[TaskSpec]:
        return [self.get(name) for name in self.names()]
