"""Memory a trial worker holds per task: the task data is mapped from Ray's object store.

For each task, start one worker with the task's data (as the platform does), run one trial of a
baseline, and read the worker's memory from /proc: resident, shared (pages mapped from the object
store, where the data lives once per node) and private (the worker's own: Python, torch, the
model). A worker that copied the data would show it as private memory.

    .venv/bin/python bench/bench_worker_memory.py [--tasks NAME ...] [--scale 20]

``--scale K`` adds a row for the first task with K times its cases, to show that a worker's
private memory does not grow with the data.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np

from medarena.execution import TrialJob, WorkerPool, connect, shutdown
from medarena.submissions import load_submission
from medarena.tasks import TaskCatalogue, load_task_data
from medarena.tuning.jobs import base_config

REPO = Path(__file__).resolve().parents[1]
BASELINE = {"classification": "logistic-regression", "segmentation": "shallow-fcn",
            "detection": "blob-cnn"}  # fmt: skip
MIB = 2**20


def _nbytes(obj: object) -> int:
    total = 0
    for value in vars(obj).values():
        if isinstance(value, np.ndarray):
            total += value.nbytes
        elif hasattr(value, "__dict__"):
            total += _nbytes(value)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--tasks", nargs="+", default=["ct-liver-lesions", "ct-organs-2d", "lung-nodules"]
    )
    parser.add_argument("--scale", type=int, default=20)
    args = parser.parse_args()
    connect(None, num_cpus=2)
    catalogue = TaskCatalogue(REPO / "tasks")
    specs = [(name, catalogue.get(name)) for name in args.tasks]
    first = specs[0][1]
    params = {**first.dataset.params, "n_cases": first.dataset.params["n_cases"] * args.scale}
    dataset = first.dataset.model_copy(update={"params": params})
    specs.append((f"{first.name} x{args.scale}", first.model_copy(update={"dataset": dataset})))
    print(f"{'task':<22} {'data MiB':>9} {'rss MiB':>8} {'shared MiB':>10} {'private MiB':>11}")
    for name, spec in specs:
        data = load_task_data(spec).worker_data()
        bundle = load_submission(REPO / "submissions" / BASELINE[spec.kind])
        pool = WorkerPool(data, size=1)
        pool.ready(timeout=300)
        config = replace(base_config(bundle, spec, use_gpu=False), max_epochs=1)
        pool.submit(TrialJob(key=0, config=config, files=bundle.files))
        outcome = pool.next_result().outcome
        assert outcome.ok, outcome.error
        (memory,) = pool.memory()
        print(
            f"{name:<22} {_nbytes(data) / MIB:>9.1f} {memory['rss'] / MIB:>8.0f} "
            f"{memory['shared'] / MIB:>10.0f} {memory['private'] / MIB:>11.0f}"
        )
        pool.shutdown()
    shutdown()


if __name__ == "__main__":
    main()
