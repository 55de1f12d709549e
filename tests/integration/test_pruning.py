"""The median pruner, an option of the task: workers report each epoch's validation value to the
pruning board, weak trials stop early, and the sweep still finishes its budget."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from conftest import TINY_TASK, arena_config
from medarena.arena import Arena
from medarena.testing import write_boring_submission

pytestmark = [pytest.mark.slow, pytest.mark.ray]

# "bad" configurations rank the classes backwards, so their validation AUC stays below 0.5.
SOMETIMES = """
    from torch.nn import functional as F
    from boring import Boring

    class Sometimes(Boring):
        def __init__(self, num_classes, input_shape, quality="good"):
            super().__init__(num_classes, input_shape)
            self.bad = quality == "bad"

        def forward(self, x):
            logits = super().forward(x)
            return -logits if self.bad else logits

        def training_step(self, batch, batch_idx):
            x, y = batch
            return F.cross_entropy(self.linear(x.flatten(1)), y)
"""


def test_the_median_pruner_stops_weak_trials(ray_cluster: str, tmp_path: Path) -> None:
    catalogue = tmp_path / "tasks"
    (catalogue / "tiny-ct").mkdir(parents=True)
    task = TINY_TASK.replace("patience: 3,", "patience: 8, pruner: median,")
    assert "pruner: median" in task
    (catalogue / "tiny-ct" / "task.yaml").write_text(task, encoding="utf-8")
    folder = write_boring_submission(
        tmp_path / "sometimes",
        name="sometimes",
        variant=SOMETIMES,
        entry_class="Sometimes",
        search_space={"quality": {"type": "categorical", "choices": ["good", "bad"]}},
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
    row = arena.store.submission(result.submission_id)
    assert row is not None
    study = optuna.load_study(study_name=row.study_name, storage=arena.config.study_url)
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    optuna_pruned = [t.number for t in trials if t.state == optuna.trial.TrialState.PRUNED]
    assert optuna_pruned == [t.number for t in pruned]
    # The curves reached the SQL study too: every epoch of every trial (one driver asked them all).
    assert [len(t.intermediate_values) for t in trials] == [t.outcome.epochs for t in result.trials]
