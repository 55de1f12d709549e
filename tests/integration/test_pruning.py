"""The median pruner, an option of the task: workers report each epoch's validation value to the
pruning board, weak trials stop early, and the sweep still finishes its budget."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from conftest import TINY_TASK, arena_config
from medarena.arena import Arena

pytestmark = [pytest.mark.slow, pytest.mark.ray]

# "bad" configurations rank the classes backwards, so their validation AUC stays below 0.5.
MODEL = """\
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
import lightning.pytorch as pl


class Sometimes(pl.LightningModule):
    def __init__(self, num_classes, input_shape, quality="good"):
        super().__init__()
        self.bad = quality == "bad"
        self.linear = nn.Linear(int(np.prod(input_shape)), num_classes)

    def forward(self, x):
        logits = self.linear(x.flatten(1))
        return -logits if self.bad else logits

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self.linear(x.flatten(1)), y)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=0.01)
"""


def test_the_median_pruner_stops_weak_trials(
    ray_cluster: None,
    make_submission,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    catalogue = tmp_path / "tasks"
    (catalogue / "tiny-ct").mkdir(parents=True)
    task = TINY_TASK.replace("patience: 3,", "patience: 8, pruner: median,")
    assert "pruner: median" in task
    (catalogue / "tiny-ct" / "task.yaml").write_text(task)
    folder = make_submission(
        "sometimes",
        "name: sometimes\nentry_point: model.py:Sometimes\n"
        "search_space:\n  quality: {type: categorical, choices: [good, bad]}\n",
        MODEL,
    )
    state = tmp_path / "state"
    arena = Arena(arena_config(catalogue, state))
    try:
        result = arena.submit(folder, "tiny-ct", trials=8)
    finally:
        arena.close(stop_cluster=False)

    assert len(result.trials) == 8
    pruned = [t for t in result.trials if t.state == "pruned"]
    assert pruned, [(t.params, t.state, t.outcome.epochs) for t in result.trials]
    summary = [(t.params, t.state, t.outcome.epochs, t.value) for t in result.trials]
    assert all(t.outcome.epochs < 8 for t in pruned)
    # Bad configurations are below the median at every epoch: once two trials have completed,
    # every bad one is pruned at its first epoch after the warm-up.
    late_bad = [t for t in result.trials if t.params["quality"] == "bad" and t.number >= 4]
    assert all(t.state == "pruned" and t.outcome.epochs == 2 for t in late_bad), summary
    assert result.best_params == {"quality": "good"}
    rows = arena.store.trials(result.submission_id)
    assert sorted(r.number for r in rows if r.state == "pruned") == [t.number for t in pruned]
    assert arena.store.progress(result.submission_id)["pruned"] == len(pruned)
    studies = sqlite3.connect(state / "studies.db")
    optuna_pruned = studies.execute("select number from trials where state = 'PRUNED'").fetchall()
    assert sorted(n for (n,) in optuna_pruned) == [t.number for t in pruned]
    # The curves reached the SQL study too.
    (curves,) = studies.execute("select count(*) from trial_intermediate_values").fetchone()
    assert curves >= sum(t.outcome.epochs for t in result.trials)
