"""Splits read from a file: relative to the task folder, every case once, patients kept whole."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest
from formats import write_medmnist

from medarena.exceptions import DatasetError, TaskSpecError
from medarena.tasks import load_task_data, load_task_spec

TASK = """
name: tiny-split
title: t
kind: classification
classes: [a, b, c]
dataset: {{reader: medmnist, params: {{path: "{path}"}}}}
split: {{method: file, file: {file}}}
metrics: {{primary: auc}}
"""


def _task(tmp_path: Path, rows: list[str], file: str = "split.csv") -> Path:
    data = write_medmnist(tmp_path / "x.npz", sizes=(3, 2, 2))
    folder = tmp_path / "tasks" / "tiny-split"
    folder.mkdir(parents=True)
    (folder / "task.yaml").write_text(textwrap.dedent(TASK.format(path=data, file=file)))
    (folder / "split.csv").write_text("\n".join(["case_id,split", *rows]) + "\n")
    return folder / "task.yaml"


def _rows(**overrides: str) -> list[str]:
    ids = [f"{s}-{i:06d}" for s, n in (("train", 3), ("val", 2), ("test", 2)) for i in range(n)]
    given = {c: ("test" if c.startswith("train-000000") else c.split("-")[0]) for c in ids}
    given.update(overrides)
    return [f"{c},{s}" for c, s in given.items() if s != "-"]


def test_split_file_beside_the_task(tmp_path: Path) -> None:
    data = load_task_data(load_task_spec(_task(tmp_path, _rows())))
    assert data.split[0] == "test" and data.size("train") == 2 and data.size("test") == 3
    assert np.all(data.split[3:5] == "val")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"ghost": "train"}, r"split\.csv: 1 case id\(s\) not in the dataset, e\.g\. \['ghost'\]"),
        ({"val-000001": "-"}, r"split\.csv: 1 case\(s\) have no split, e\.g\. \['val-000001'\]"),
        (
            {"val-000001": "validation"},
            r"split\.csv, line \d+: split 'validation' of case 'val-000001'",
        ),
        (
            {"train-000000": "train", "test-000000": "val", "test-000001": "val"},
            r"split\.csv: no case in split\(s\) \['test'\]",
        ),
    ],
)
def test_bad_split_files_are_explained(
    tmp_path: Path, overrides: dict[str, str], message: str
) -> None:
    spec = load_task_spec(_task(tmp_path, _rows(**overrides)))
    with pytest.raises(DatasetError, match=message):
        load_task_data(spec)


def test_missing_split_file_and_method_mismatch(tmp_path: Path) -> None:
    spec = load_task_spec(_task(tmp_path, _rows(), file="nope.csv"))
    with pytest.raises(
        DatasetError, match=r"split file not found: .*tiny-split/nope\.csv \(split\.file\)"
    ):
        load_task_data(spec)
    path = tmp_path / "tasks" / "tiny-split" / "task.yaml"
    path.write_text(path.read_text().replace("method: file, ", "method: random, "))
    with pytest.raises(TaskSpecError, match="goes with 'method: file' only"):
        load_task_spec(path)
