"""task.yaml is read through the same bounded YAML reader as submission.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest

from medarena.exceptions import TaskSpecError
from medarena.tasks.spec import load_task_spec


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n"
            + "".join(
                f"{k}: &{k} [{', '.join([f'*{j}'] * 10)}]\n"
                for j, k in zip("abcd", "bcde", strict=True)
            )
            + "name: *e\n",
            r"task\.yaml:\d+:\d+: invalid YAML: the document expands to more than 100000 values",
        ),
        ("name: x\n" + "# padding\n" * 7000, r"task\.yaml: larger than 64 KiB"),
        ("name: !!python/name:os.system\n", r"task\.yaml:1:7: invalid YAML: tag .* not allowed"),
    ],
)
def test_hostile_task_yaml_is_refused(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "task.yaml"
    path.write_text(text)
    with pytest.raises(TaskSpecError, match=message):
        load_task_spec(path)
