"""A task's per-trial time limit stops training; the best epoch reached so far still counts."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest

from medarena.execution import TrialJob
from medarena.execution.supervisor import Supervisor
from medarena.sandbox import SandboxLimits
from medarena.submissions import load_submission
from medarena.tasks import TaskCatalogue, load_task_data
from medarena.testing import write_boring_submission
from medarena.tuning.jobs import base_config

pytestmark = pytest.mark.slow

SLOW = """
    import time
    from boring import Boring

    class Slow(Boring):
        def training_step(self, batch, batch_idx):
            time.sleep(0.05)
            return super().training_step(batch, batch_idx)
"""


def test_time_limit_stops_a_long_trial(catalogue: Path, tmp_path: Path) -> None:
    folder = write_boring_submission(
        tmp_path / "slow", name="slow", variant=SLOW, entry_class="Slow", search_space={}
    )
    spec = TaskCatalogue(catalogue).get("tiny-ct")
    data = load_task_data(spec).worker_data()
    bundle = load_submission(folder)
    config = replace(
        base_config(bundle, spec, use_gpu=False), max_epochs=500, patience=500, time_limit_s=2.0
    )
    supervisor = Supervisor(data, limits=SandboxLimits())
    try:
        start = time.perf_counter()
        outcome = supervisor.run(TrialJob(key=0, config=config, files=bundle.files))
        elapsed = time.perf_counter() - start
    finally:
        supervisor.close()
    assert outcome.ok, outcome.error
    assert 1 <= outcome.epochs < 500 and outcome.best_epoch >= 0
    # Unlimited, 500 epochs of ~0.5 s would take minutes; bounds leave room for a loaded machine
    # (elapsed includes the sandbox's start, which imports torch).
    assert outcome.fit_seconds < 20.0 and elapsed < 60.0
    assert outcome.weights is not None
