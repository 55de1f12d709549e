"""The pool contract (medarena.testing.pool_checks), run on every pool: the fake (milliseconds,
in `make unit`) and the real one on Ray (sandboxed supervisors running the boring submission,
workers killed from outside; slow), as Optuna runs one suite over every storage.

Both get the same jobs: dry runs of the boring submission, which pass, and trials of it that
sleep in every training step for ten thousand epochs, which run until they are stopped.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

import pytest
from workers import busy_trial_workers

from conftest import TINY_TASK
from medarena.execution import Pool, TrialJob
from medarena.execution.supervisor import TrialConfig, TrialOutcome
from medarena.submissions import SubmissionBundle, load_submission
from medarena.tasks import TaskSpec
from medarena.tasks.spec import load_task_spec
from medarena.testing import FakePool, Hang, cheap_outcome, write_boring_submission
from medarena.testing.pool_checks import CHECKS, Check, PoolHarness, Skip
from medarena.tuning.jobs import base_config

SLEEPY = """
    import time
    from boring import Boring

    class Sleepy(Boring):
        def __init__(self, num_classes, input_shape, lr=0.01, step_sleep_s=0.0):
            super().__init__(num_classes, input_shape, lr=lr)
            self.step_sleep_s = step_sleep_s

        def training_step(self, batch, batch_idx):
            time.sleep(self.step_sleep_s)
            return super().training_step(batch, batch_idx)
"""


@dataclass
class _Harness:
    """The jobs of one submission (a dry run, or a trial that runs until stopped) on ``pool``."""

    pool: Pool
    bundle: SubmissionBundle
    config: TrialConfig

    def job(self, key: int, *, hangs: bool = False, owner: int = 0) -> TrialJob:
        if not hangs:
            config = replace(self.config, params={"lr": 0.01, "step_sleep_s": 0.0})
            return TrialJob(key, config, self.bundle.files, dry_run=True, owner=owner)
        config = replace(
            self.config,
            params={"lr": 0.01, "step_sleep_s": 0.2},
            max_epochs=10_000,
            patience=10_000,
        )
        return TrialJob(key, config, self.bundle.files, owner=owner)

    def kill(self) -> None:
        if isinstance(self.pool, FakePool):
            assert len(self.pool.kill()) == 1
            return
        deadline = time.monotonic() + 60
        while not (busy := busy_trial_workers()):
            assert time.monotonic() < deadline, "no trial worker started its job"
            time.sleep(0.05)
        (pid,) = busy
        os.kill(pid, signal.SIGKILL)


def _fake_behaviour(job: TrialJob) -> TrialOutcome:
    if job.config.params["step_sleep_s"]:
        raise Hang
    return cheap_outcome(job)


@pytest.fixture(scope="module")
def submission(tmp_path_factory: pytest.TempPathFactory) -> tuple[SubmissionBundle, TaskSpec]:
    root = tmp_path_factory.mktemp("conformance")
    (root / "tiny-ct").mkdir()
    (root / "tiny-ct" / "task.yaml").write_text(TINY_TASK, encoding="utf-8")
    spec = load_task_spec(root / "tiny-ct" / "task.yaml")
    folder = write_boring_submission(
        root / "sleepy", name="sleepy", variant=SLEEPY, entry_class="Sleepy"
    )
    return load_submission(folder), spec


@pytest.fixture(scope="module")
def ray_pool(ray_cluster: str, submission: tuple[SubmissionBundle, TaskSpec]) -> Iterator[Pool]:
    """Two real workers (the session's Ray has two CPUs), shared by the checks."""
    from medarena.execution import WorkerPool
    from medarena.tasks import load_task_data

    if not sys.platform.startswith("linux"):
        pytest.skip("the checks kill workers found in /proc")
    pool = WorkerPool(load_task_data(submission[1]).worker_data(), size=2)
    try:
        pool.ready(timeout=300)
        yield pool
    finally:
        pool.shutdown()


@pytest.fixture(
    params=[
        "fake",
        pytest.param("ray", marks=[pytest.mark.slow, pytest.mark.ray]),
    ]
)
def harness(
    request: pytest.FixtureRequest, submission: tuple[SubmissionBundle, TaskSpec]
) -> Iterator[PoolHarness]:
    bundle, spec = submission
    pool: Pool = (
        FakePool(2, _fake_behaviour)
        if request.param == "fake"
        else request.getfixturevalue("ray_pool")
    )
    yield _Harness(pool, bundle, base_config(bundle, spec, use_gpu=False))
    if pool.running:  # a failed check: the next one starts on an idle pool
        pool.cancel()


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__.removeprefix("check_"))
def test_the_pool_contract(harness: PoolHarness, check: Check) -> None:
    try:
        check(harness)
    except Skip as skip:
        pytest.skip(str(skip))
