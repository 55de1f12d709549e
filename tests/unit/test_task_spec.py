"""Task specs and the catalogue: valid files load, invalid ones name the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from medarena.exceptions import TaskNotFoundError, TaskSpecError
from medarena.tasks import TaskCatalogue, load_task_spec

REPO_TASKS = Path(__file__).resolve().parents[2] / "tasks"


def test_every_catalogue_task_loads() -> None:
    catalogue = TaskCatalogue(REPO_TASKS)
    assert "ct-liver-lesions" in catalogue.names()
    for spec in catalogue.specs():
        assert spec.metrics.primary in spec.metrics.names


def test_unknown_task_lists_known_ones(catalogue: Path) -> None:
    with pytest.raises(TaskNotFoundError, match=r"unknown task 'nope'.*tiny-ct"):
        TaskCatalogue(catalogue).get("nope")


def test_a_task_name_is_a_folder_of_the_catalogue_not_a_path(catalogue: Path) -> None:
    outside = catalogue.parent / "outside"
    outside.mkdir()
    (outside / "task.yaml").write_text((catalogue / "tiny-ct" / "task.yaml").read_text())
    for name in ("../outside", str(outside), "tiny-ct/.", ".."):
        with pytest.raises(TaskNotFoundError, match="unknown task"):
            TaskCatalogue(catalogue).get(name)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: [unclosed", r"task\.yaml:1:\d+: invalid YAML"),
        ("- a list\n", "expected a mapping"),
        ("name: x\n", "field 'title': Field required"),
    ],
)
def test_invalid_yaml_names_file_and_place(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "task.yaml"
    path.write_text(text)
    with pytest.raises(TaskSpecError, match=message):
        load_task_spec(path)


def test_bad_fields_are_named(catalogue: Path) -> None:
    path = catalogue / "tiny-ct" / "task.yaml"
    text = path.read_text()
    path.write_text(text.replace("primary: auc", "primary: f2").replace("train: 0.5", "train: 0.6"))
    with pytest.raises(TaskSpecError) as info:
        load_task_spec(path)
    message = str(info.value)
    assert f"{path}: field 'split': train + val + test must be 1" in message
    assert "field 'metrics'" in message
    assert "unknown metric(s) ['f2']" in message


def test_folder_and_name_must_agree(catalogue: Path) -> None:
    (catalogue / "tiny-ct").rename(catalogue / "other")
    with pytest.raises(TaskSpecError, match="but the folder is 'other'"):
        TaskCatalogue(catalogue).get("other")
