"""Fault tolerance of the execution layer with real Ray workers.

A worker process killed in the middle of a trial is replaced, the trial runs again (counted), and
the sweep completes its budget; a trial whose worker keeps dying fails after bounded attempts.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from medarena.arena import Arena
from medarena.exceptions import TrialError

pytestmark = [pytest.mark.slow, pytest.mark.ray]

# Kills its own worker process in the first epoch of the first trial that finds no marker file
# (the marker is created atomically first, so exactly one trial dies); the dry run is spared.
SUICIDAL = """\
import os, signal
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
import lightning.pytorch as pl

MARKER = {marker!r}
ALWAYS = {always!r}


class Suicidal(pl.LightningModule):
    def __init__(self, num_classes, input_shape, lr=0.01):
        super().__init__()
        self.save_hyperparameters()
        self.linear = nn.Linear(int(np.prod(input_shape)), num_classes)

    def forward(self, x):
        return self.linear(x.flatten(1))

    def training_step(self, batch, batch_idx):
        if not self.trainer.fast_dev_run and batch_idx == 1:
            try:
                fd = os.open(MARKER, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                if ALWAYS:
                    os.kill(os.getpid(), signal.SIGKILL)
            else:
                os.close(fd)
                os.kill(os.getpid(), signal.SIGKILL)
        x, y = batch
        return F.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
"""

YAML = "name: suicidal\nentry_point: model.py:Suicidal\n" + (
    "search_space:\n  lr: {type: float, low: 0.001, high: 0.1, log: true}\n"
)


def test_a_worker_killed_mid_trial_is_replaced_and_the_trial_rerun(
    arena: Arena,
    make_submission,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    marker = tmp_path / "died-once"
    folder = make_submission("suicidal", YAML, SUICIDAL.format(marker=str(marker), always=False))
    result = arena.submit(folder, "tiny-ct", trials=3)

    assert marker.exists()  # a worker really died
    assert [t.state for t in result.trials] == ["complete"] * 3
    assert sorted(t.attempts for t in result.trials) == [1, 1, 2]
    rows = arena.store.trials(result.submission_id)
    assert sorted(r.attempts for r in rows) == [1, 1, 2]
    assert all(r.state == "complete" for r in rows)
    retried = next(t for t in result.trials if t.attempts == 2)
    assert retried.outcome.epochs >= 1 and retried.outcome.test_predictions is not None
    progress = arena.store.progress(result.submission_id)
    assert progress["status"] == "scored" and progress["done"] == 3 and progress["retried"] == 1
    assert result.scores["auc"].value > 0.5


def test_a_trial_whose_worker_keeps_dying_fails_after_bounded_attempts(
    ray_cluster: None,
    catalogue: Path,
    make_submission,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    from medarena.execution import WorkerPool
    from medarena.submissions import load_submission
    from medarena.tasks import TaskCatalogue, load_task_data
    from medarena.tuning import run_sweep
    from medarena.tuning.sweep import base_config

    marker = tmp_path / "always"
    folder = make_submission("always", YAML, SUICIDAL.format(marker=str(marker), always=True))
    spec = TaskCatalogue(catalogue).get("tiny-ct")
    pool = WorkerPool(load_task_data(spec).worker_data(), size=1)
    bundle = load_submission(folder)
    try:
        with pytest.raises(TrialError, match=r"(?s)worker process died in each of 2 attempts"):
            run_sweep(
                pool,
                bundle,
                spec,
                storage_url=f"sqlite:///{tmp_path / 'studies.db'}",
                study_name="always-dies",
                n_trials=1,
                config=base_config(bundle, spec, use_gpu=False),
                max_attempts=2,
            )
        assert pool.replaced == 2 and pool.idle == 1
    finally:
        pool.shutdown()
