"""Each real dataset format, written by the test, trained and scored through the platform.

The same files also prove the trust boundary for every kind: a submission that scans its worker's
memory sees the validation ground truth (label maps, nodule positions) but never the test's.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from formats import write_decathlon, write_dicom, write_luna16, write_medmnist
from spy import YAML, spy_report, spy_source

from conftest import arena_config
from medarena.arena import Arena
from medarena.exceptions import SubmissionError
from medarena.tasks import TaskCatalogue, TaskData, load_task_data

pytestmark = [pytest.mark.slow, pytest.mark.ray]

BUDGET = "budget: {trials: 1, max_epochs: 3, patience: 2, batch_size: 4, cpus_per_trial: 1}"

TASKS = {
    "medmnist": """\
        kind: classification
        classes: [a, b, c]
        dataset: {{reader: medmnist, params: {{path: "{root}/organ.npz"}}}}
        split: {{method: predefined}}
        metrics: {{primary: auc, report: [accuracy]}}
        """,
    "decathlon": """\
        kind: segmentation
        classes: [background, sphere, core]
        dataset:
          reader: decathlon
          params: {{root: "{root}/Task00", patient_regex: "^(pat\\\\d+)"}}
        split: {{train: 0.5, val: 0.25, test: 0.25, seed: 1}}
        metrics: {{primary: dice, report: [hd95, nsd]}}
        """,
    "luna16": """\
        kind: detection
        classes: [nodule]
        dataset:
          reader: luna16
          params: {{root: "{root}/luna", excluded: annotations_excluded.csv}}
        split: {{train: 0.34, val: 0.33, test: 0.33, seed: 2}}
        metrics: {{primary: cpm, report: [sensitivity, fps_per_scan]}}
        """,
    "dicom": """\
        kind: classification
        classes: [benign, malignant]
        dataset:
          reader: dicom
          params: {{root: "{root}/dicom/series", labels: "{root}/dicom/labels.csv"}}
        split: {{train: 0.5, val: 0.25, test: 0.25, seed: 0}}
        metrics: {{primary: auc, report: [accuracy]}}
        """,
}
BASELINE = {
    "medmnist": "logistic-regression",
    "decathlon": "shallow-fcn",
    "luna16": "blob-cnn",
    "dicom": "logistic-regression",
}


def _write(fmt: str, root: Path) -> None:
    if fmt == "medmnist":
        write_medmnist(root / "organ.npz", sizes=(12, 6, 6))
    elif fmt == "decathlon":
        write_decathlon(root / "Task00", n_cases=8)
    elif fmt == "luna16":
        write_luna16(root / "luna", n_series=6)
    else:
        write_dicom(root / "dicom", n_cases=8)


def _catalogue(fmt: str, tmp_path: Path) -> Path:
    data = tmp_path / "data"
    _write(fmt, data)
    folder = tmp_path / "tasks" / f"tiny-{fmt}"
    folder.mkdir(parents=True)
    body = textwrap.dedent(TASKS[fmt]).format(root=data)
    head = f"name: tiny-{fmt}\ntitle: tiny {fmt}\n"
    (folder / "task.yaml").write_text(head + body + BUDGET + "\n")
    return tmp_path / "tasks"


@pytest.fixture(scope="module", params=sorted(TASKS))
def fmt_arena(
    request: pytest.FixtureRequest, ray_cluster: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Arena]]:
    """A format's files, written once, and an arena on them, shared by the format's tests (its
    worker pool started once). Whatever a test submits, the others' assertions hold."""
    fmt = request.param
    root = tmp_path_factory.mktemp(fmt)
    arena = Arena(arena_config(_catalogue(fmt, root), root / "state"))
    yield fmt, arena
    arena.close(stop_cluster=False)


def test_each_format_trains_and_scores(fmt_arena: tuple[str, Arena], copy_baseline) -> None:  # type: ignore[no-untyped-def]
    fmt, arena = fmt_arena
    result = arena.submit(copy_baseline(BASELINE[fmt]), f"tiny-{fmt}", trials=1)
    board = arena.leaderboard(f"tiny-{fmt}")
    spec = TaskCatalogue(arena.config.catalogue_dir).get(f"tiny-{fmt}")
    assert list(result.scores) == spec.metrics.names
    primary = result.scores[spec.metrics.primary]
    assert np.isfinite(primary.value) and primary.ci_low <= primary.value <= primary.ci_high
    assert board["submission"].tolist() == [BASELINE[fmt]] and board["rank"].tolist() == [1]
    per_case = {"classification": "correct", "segmentation": "dice", "detection": "lesions"}
    cases = arena.store.case_scores(result.submission_id)
    assert len(cases) == len(load_task_data(spec).test_case_ids)
    assert cases[per_case[spec.kind]].notna().all()


def _ground_truth(data: TaskData, split: str) -> npt.NDArray[np.generic]:
    reference = data.reference(split)
    if reference.lesions is not None:
        return reference.lesions.center_xyz
    return reference.labels


@pytest.mark.parametrize("fmt_arena", ["decathlon", "luna16"], indirect=True)
def test_test_ground_truth_never_reaches_a_worker(
    fmt_arena: tuple[str, Arena], make_submission
) -> None:  # type: ignore[no-untyped-def]
    """Segmentation label maps and detection findings of the test cases stay in the scorer (a
    failed dry run records nothing, so the format's leaderboard is unchanged); classification's
    labels are checked in ``test_end_to_end.py``."""
    fmt, arena = fmt_arena
    kind = "segmentation" if fmt == "decathlon" else "detection"
    data = load_task_data(TaskCatalogue(arena.config.catalogue_dir).get(f"tiny-{fmt}"))
    targets = {
        "train targets": data.worker_data().train_y,
        "val truth": _ground_truth(data, "val"),
        "test truth": _ground_truth(data, "test"),
    }
    folder = make_submission("spy", YAML, spy_source(targets, kind))
    with pytest.raises(SubmissionError, match="SPY-REPORT") as failed:
        arena.submit(folder, f"tiny-{fmt}", trials=1)
    assert spy_report(str(failed.value))["found"] == ["train targets"]
