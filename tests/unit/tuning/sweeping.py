"""Helpers of the sweep tests on a fake pool (no Ray, no sandbox, no torch): the tiny task, the
boring submission, sweeps on one study database, and what their studies hold (read through
Optuna's API)."""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import optuna
import yaml

from conftest import TINY_TASK
from medarena.submissions import SubmissionBundle, load_submission
from medarena.tasks import TaskSpec
from medarena.testing import write_boring_submission
from medarena.tuning import FairShare, Sweep, TrialRecord
from medarena.tuning.jobs import base_config

QUALITY = {"quality": {"type": "categorical", "choices": ["good", "bad"]}}
"""A search space whose "bad" configurations a behaviour can make weak."""


def studies_url(tmp_path: Path) -> Iterator[str]:
    """A new SQLite database for one test's Optuna studies, in memory-backed /dev/shm where
    there is one (else in ``tmp_path``): Optuna writes each trial in several transactions, and
    on disk each waits for a sync (four times slower here). Removed afterwards."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield f"sqlite:///{tmp_path / 'studies.db'}"
        return
    folder = Path(tempfile.mkdtemp(dir=shm, prefix="medarena-test-studies-"))
    try:
        yield f"sqlite:///{folder / 'studies.db'}"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@functools.cache
def task(*, pruner: bool = False, max_epochs: int = 8) -> TaskSpec:
    """The tiny task of tests/conftest.py, optionally with the median pruner (and a patience
    long enough never to stop a trial first)."""
    text = TINY_TASK.replace("max_epochs: 8,", f"max_epochs: {max_epochs},")
    if pruner:
        text = text.replace("patience: 3,", f"patience: {max_epochs}, pruner: median,")
    return TaskSpec.model_validate(yaml.safe_load(text))


@functools.cache
def _folder() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="medarena-test-boring-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


@functools.cache
def boring(*, quality: bool = False) -> SubmissionBundle:
    """The boring submission, searched over ``lr`` (or over ``quality``: good or bad)."""
    name = "quality" if quality else "lr"
    folder = write_boring_submission(
        _folder() / name, name=f"boring-{name}", search_space=QUALITY if quality else None
    )
    return load_submission(folder)


def sweep(
    url: str,
    name: str,
    n_trials: int,
    *,
    bundle: SubmissionBundle | None = None,
    spec: TaskSpec | None = None,
    **options: Any,
) -> Sweep:
    """A sweep of the boring submission on the tiny task, its study ``name`` at ``url``."""
    bundle = bundle or boring()
    spec = spec or task()
    return Sweep(
        bundle,
        spec,
        storage_url=url,
        study_name=name,
        n_trials=n_trials,
        config=base_config(bundle, spec, use_gpu=False),
        **options,
    )


def drive(share: FairShare) -> list[Sweep]:
    """Step ``share`` until every sweep has ended; the sweeps in the order they ended."""
    ended: list[Sweep] = []
    for _ in range(10_000):
        if not share.sweeps:
            return ended
        ended += share.step(timeout=None)
    raise AssertionError("the sweeps did not end")


def study(url: str, name: str) -> list[optuna.trial.FrozenTrial]:
    """The trials of study ``name``, in number order."""
    loaded = optuna.load_study(study_name=name, storage=url)
    return sorted(loaded.get_trials(deepcopy=False), key=lambda t: t.number)


def states(url: str, name: str) -> list[tuple[int, str]]:
    """(number, state) of each trial of study ``name``: ``[(0, "COMPLETE"), (1, "FAIL")]``."""
    return [(t.number, t.state.name) for t in study(url, name)]


def durable(record: TrialRecord) -> TrialRecord:
    """What the store keeps of a recorded trial (``on_trial``): a copy, with its weights (the
    sweep drops its own copy's once it was recorded)."""
    return replace(record, outcome=replace(record.outcome))
