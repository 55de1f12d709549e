"""End to end with the real components: Ray workers, Optuna on SQLite, Lightning, MLflow, SQL."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from medarena.arena import Arena
from medarena.exceptions import SubmissionError, TrialError
from medarena.tasks import TaskCatalogue, load_task_data

pytestmark = [pytest.mark.slow, pytest.mark.ray]


def test_two_baselines_are_trained_scored_tracked_and_ranked(arena: Arena, copy_baseline) -> None:  # type: ignore[no-untyped-def]
    cnn = arena.submit(copy_baseline("small-cnn"), "tiny-ct", trials=2, team="a")
    linear = arena.submit(copy_baseline("logistic-regression"), "tiny-ct", trials=2, team="b")

    for result in (cnn, linear):
        assert len(result.trials) == 2
        assert all(t.state == "complete" for t in result.trials)
        assert result.scores["auc"].value > 0.6
        assert (
            result.scores["auc"].ci_low
            <= result.scores["auc"].value
            <= result.scores["auc"].ci_high
        )
        assert 0.0 <= result.scores["accuracy"].value <= 1.0
        # Two workers fit in parallel: the sweep takes at least its longest fit, at most the sum.
        assert max(t.outcome.fit_seconds for t in result.trials) < result.sweep_seconds

    board = arena.leaderboard("tiny-ct")
    assert sorted(board["submission"]) == ["logistic-regression", "small-cnn"]
    assert board["rank"].tolist() == [1, 2]
    assert board["auc"].is_monotonic_decreasing

    # The Optuna study lives in its own database, not the leaderboard's.
    state = Path(arena.config.db_url.removeprefix("sqlite:///")).parent
    studies = sqlite3.connect(state / "studies.db")
    assert studies.execute("select count(*) from trials where state = 'COMPLETE'").fetchone() == (
        4,
    )
    tables = {
        r[0]
        for r in sqlite3.connect(state / "leaderboard.db").execute(
            "select name from sqlite_master where type = 'table'"
        )
    }
    assert "studies" not in tables and {"tasks", "submissions", "trials", "scores"} <= tables

    # MLflow: a parent run per submission with test metrics, a nested run per trial with curves.
    import mlflow

    mlflow.set_tracking_uri(arena.config.tracking_uri)
    runs = mlflow.search_runs(experiment_names=["medarena/tiny-ct"], output_format="pandas")
    parents = runs[runs["tags.mlflow.parentRunId"].isna()]
    children = runs[runs["tags.mlflow.parentRunId"].notna()]
    assert len(parents) == 2 and len(children) == 4
    assert set(parents["tags.submission"]) == {"small-cnn", "logistic-regression"}
    split_hash = load_task_data(TaskCatalogue(arena.config.catalogue_dir).get("tiny-ct")).split_hash
    assert set(runs["tags.split_hash"]) == {split_hash}
    assert parents["metrics.test_auc"].notna().all()
    assert set(children["tags.mlflow.parentRunId"]) == set(parents["run_id"])
    client = mlflow.MlflowClient(arena.config.tracking_uri)
    child = children.iloc[0]
    history = client.get_metric_history(child["run_id"], "val_auc")
    assert [m.step for m in history] == list(range(len(history))) and len(history) >= 1
    assert client.get_metric_history(child["run_id"], "train_loss")
    assert {"params.lr"} <= set(children.columns)


SPY = """\
import gc, hashlib, json, os, time
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
import lightning.pytorch as pl

OUT = {out!r}


def _int_vectors():
    seen = {{}}
    for obj in gc.get_objects():
        try:
            members = object.__getattribute__(obj, "__dict__")
        except Exception:
            members = None
        extra = list(members.values()) if isinstance(members, dict) else []
        for ref in [obj, *gc.get_referents(obj), *extra]:
            if isinstance(ref, torch.Tensor) and ref.dim() == 1 and not ref.is_floating_point():
                ref = ref.numpy()
            if isinstance(ref, np.ndarray) and ref.ndim == 1 and ref.dtype.kind in "iu":
                seen[id(ref)] = ref
    return [hashlib.sha256(np.ascontiguousarray(a, dtype=np.int64).tobytes()).hexdigest()
            for a in seen.values()]


class Spy(pl.LightningModule):
    def __init__(self, num_classes, input_shape, lr=0.01):
        super().__init__()
        self.linear = nn.Linear(int(np.prod(input_shape)), num_classes)
        path = os.path.join(OUT, f"{{os.getpid()}}-{{time.time_ns()}}.json")
        with open(path, "w") as f:
            json.dump(_int_vectors(), f)

    def forward(self, x):
        return self.linear(x.flatten(1))

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.get("lr", 0.01))
"""


def _digest(labels: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(labels, dtype=np.int64).tobytes()).hexdigest()


def test_test_labels_never_reach_a_worker(arena: Arena, make_submission, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A submission that scans its worker's memory finds the validation labels, never the test's."""
    out = tmp_path / "spy"
    out.mkdir()
    folder = make_submission(
        "spy",
        "name: spy\nentry_point: model.py:Spy\n"
        "search_space:\n  lr: {type: float, low: 0.001, high: 0.1}\n",
        SPY.format(out=str(out)),
    )
    arena.submit(folder, "tiny-ct", trials=2)
    data = load_task_data(TaskCatalogue(arena.config.catalogue_dir).get("tiny-ct"))
    reports = [set(json.loads(p.read_text())) for p in out.glob("*.json")]
    assert len(reports) == 3  # the dry run and two trials
    seen = set().union(*reports)
    val_labels = data.arrays.labels[data.split == "val"]
    assert _digest(val_labels) in seen  # the scan works: it sees labels that are shipped
    assert _digest(data.reference("test").labels) not in seen


def test_a_failing_dry_run_writes_nothing(arena: Arena, make_submission) -> None:  # type: ignore[no-untyped-def]
    model = SPY.replace(
        "return self.linear(x.flatten(1))", "return self.linear(x.flatten(1))[:, :2]"
    ).replace("F.cross_entropy(self(x), y)", "F.cross_entropy(self.linear(x.flatten(1)), y)")
    folder = make_submission(
        "wrong-shape", "name: wrong\nentry_point: model.py:Spy\n", model.format(out="/tmp")
    )
    with pytest.raises(
        SubmissionError, match=r"(?s)dry run.*logits of shape \(batch, num_classes\)"
    ):
        arena.submit(folder, "tiny-ct", trials=1)
    assert arena.leaderboard("tiny-ct").empty
    task_id = arena.store.task_id("tiny-ct", 1)
    assert task_id is not None and arena.store.submissions(task_id) == []


def test_every_trial_failing_marks_the_submission_failed(arena: Arena, make_submission) -> None:  # type: ignore[no-untyped-def]
    model = SPY.replace(
        "        x, y = batch\n",
        "        x, y = batch\n"
        "        if self.current_epoch >= 1:\n"
        "            raise ValueError('boom in epoch 1')\n",
    ).format(out="/tmp")
    folder = make_submission("breaks", "name: breaks\nentry_point: model.py:Spy\n", model)
    with pytest.raises(
        TrialError, match=r"(?s)every trial failed.*model\.py.*ValueError: boom in epoch 1"
    ):
        arena.submit(folder, "tiny-ct", trials=2)
    assert arena.leaderboard("tiny-ct").empty
    task_id = arena.store.task_id("tiny-ct", 1)
    assert task_id is not None
    (row,) = arena.store.submissions(task_id)
    assert row.status == "failed" and "boom in epoch 1" in row.error
