"""Time the execution layer: platform overhead per trial, sweep wall against the floor, 1 vs 2
workers. All three in one run, on the same configurations of the same tiny task.

Run: ``nice -n 10 python bench/bench_execution.py`` (``--trials``, ``--epochs`` and ``--size``
change the work per trial). Prints one line per figure; docs/benchmarks.md has the results.

- (a) overhead: a 1-worker platform sweep (Ray actor, sandboxes, Optuna on SQLite, store and
  MLflow records per trial) against the same trials (Trainer.fit, per-epoch validation) run in a
  plain loop in this process (``bench/inprocess.py``), same parameters, seeds and thread count.
- (b) floor: the 2-worker sweep's wall time, worker start included, against
  sum(fit seconds) / workers + one worker start.
- (c) throughput: trials per second of the 1- and 2-worker sweeps (workers already started).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

warnings.simplefilter("ignore")

TASK = """\
name: bench-ct
title: Synthetic CT slices for the execution benchmark
kind: classification
classes: [normal, cyst, hyperdense lesion, metastases]
dataset:
  reader: synthetic-ct-slices
  params: {{n_cases: {cases}, image_size: {size}, noise_hu: 15, seed: 3}}
split: {{method: stratified, train: 0.6, val: 0.2, test: 0.2, seed: 1}}
metrics: {{primary: auc, report: [accuracy]}}
budget: {{trials: {trials}, max_epochs: {epochs}, patience: {epochs}, batch_size: 32,
          cpus_per_trial: 1, seed: 0}}
"""


def bench_task(args: argparse.Namespace) -> tuple[Path, Any, Any]:
    """A temporary folder with the bench task (``--cases``, ``--size``, ``--trials``,
    ``--epochs``), its spec and its data."""
    from medarena.tasks import TaskCatalogue, load_task_data

    logging.disable(logging.WARNING)
    root = Path(tempfile.mkdtemp(prefix="medarena-bench-"))
    (root / "tasks" / "bench-ct").mkdir(parents=True)
    (root / "tasks" / "bench-ct" / "task.yaml").write_text(
        TASK.format(cases=args.cases, size=args.size, trials=args.trials, epochs=args.epochs)
    )
    spec = TaskCatalogue(root / "tasks").get("bench-ct")
    return root, spec, load_task_data(spec, cache_dir=root / "cache")


def sweep(
    workers: int, *, data: Any, spec: Any, bundle: Any, state: Path, name: str
) -> dict[str, Any]:
    """One platform sweep on a fresh pool; records every trial like ``Arena.submit`` does."""
    from medarena.execution import WorkerPool
    from medarena.store import Store
    from medarena.tracking import Tracker
    from medarena.tuning import run_sweep
    from medarena.tuning.jobs import base_config

    start = time.perf_counter()
    pool = WorkerPool(data.worker_data(), size=workers)
    pool.ready()
    started = time.perf_counter() - start
    store = Store(f"sqlite:///{state / 'leaderboard.db'}")
    task_id = store.ensure_task(
        name=spec.name, version=1, kind=spec.kind, title=spec.title,
        split_hash=data.split_hash, primary="auc",
    )  # fmt: skip
    tracker = Tracker(f"sqlite:///{state / 'mlflow.db'}", experiment=f"bench/{name}")
    parent = tracker.start_submission(name=name, tags={}, params={})
    sid = store.create_submission(
        task_id=task_id, name=name, team="bench", sha256=bundle.sha256, n_trials=spec.budget.trials,
        seed=0, split_hash=data.split_hash, study_name=name, mlflow_run_id=parent,
    )  # fmt: skip

    def record(trial: Any, progress: Any) -> None:
        o = trial.outcome
        tracker.log_trial(
            parent, number=trial.number, params=trial.params, history=o.history,
            summary={"fit_seconds": o.fit_seconds}, tags={}, failed=not o.ok,
        )  # fmt: skip
        store.add_trial(
            sid, number=trial.number, state=trial.state, params=trial.params,
            value=o.best_value, best_epoch=o.best_epoch, epochs=o.epochs,
            fit_seconds=o.fit_seconds, error=o.error, attempts=trial.attempts,
        )  # fmt: skip

    t0 = time.perf_counter()
    result = run_sweep(
        pool, bundle, spec, storage_url=f"sqlite:///{state / 'studies.db'}", study_name=name,
        n_trials=spec.budget.trials, config=base_config(bundle, spec, use_gpu=False),
        on_trial=record,
    )  # fmt: skip
    wall = time.perf_counter() - t0
    pool.shutdown()
    return {"start": started, "wall": wall, "trials": result.trials}


def plain_loop(trials: list[Any], *, data: Any, spec: Any, bundle: Any) -> dict[str, float]:
    """The same trials run in this process, unsandboxed, one thread like a worker."""
    from dataclasses import replace

    import torch
    from inprocess import load_class, run_in_process

    from medarena.tuning.jobs import base_config, trial_seed

    torch.set_num_threads(1)
    config = base_config(bundle, spec, use_gpu=False)
    folder = Path(tempfile.mkdtemp(prefix="medarena-bench-code-"))
    cls = load_class(bundle, folder)
    worker_data = data.worker_data()
    run_in_process(cls, worker_data, replace(config, params=trials[0].params, max_epochs=1))
    fit = 0.0
    start = time.perf_counter()
    for t in trials:
        outcome = run_in_process(
            cls, worker_data, replace(config, params=t.params, seed=trial_seed(config, t.number))
        )
        fit += outcome.fit_seconds
    return {"wall": time.perf_counter() - start, "fit": fit}


def _fixed_copy(folder: Path, root: Path) -> Path:
    """A copy of a submission whose search space has one choice per parameter: its middle."""
    import shutil

    import yaml

    target = root / "fixed-submission"
    shutil.copytree(folder, target)
    spec = yaml.safe_load((target / "submission.yaml").read_text())
    for name, param in spec.get("search_space", {}).items():
        if param["type"] == "categorical":
            middle = param["choices"][len(param["choices"]) // 2]
        elif param.get("log"):
            middle = (param["low"] * param["high"]) ** 0.5
        else:
            middle = (param["low"] + param["high"]) / 2
        if param["type"] == "int":
            step = param.get("step", 1)
            middle = param["low"] + step * round((middle - param["low"]) / step)
        spec["search_space"][name] = {"type": "categorical", "choices": [middle]}
    (target / "submission.yaml").write_text(yaml.safe_dump(spec))
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--cases", type=int, default=800)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--submission", default="logistic-regression")
    parser.add_argument(
        "--same-config",
        action="store_true",
        help="fix every hyperparameter at the middle of its range, so that all trials cost the "
        "same and (c) measures the platform's scaling rather than the search's imbalance",
    )
    args = parser.parse_args()

    from medarena.execution import connect, shutdown
    from medarena.submissions import load_submission

    root, spec, data = bench_task(args)
    folder = Path(__file__).resolve().parents[1] / "submissions" / args.submission
    bundle = load_submission(_fixed_copy(folder, root) if args.same_config else folder)
    connect(None, num_cpus=2)
    try:
        one = sweep(1, data=data, spec=spec, bundle=bundle, state=root, name="one-worker")
        two = sweep(2, data=data, spec=spec, bundle=bundle, state=root, name="two-workers")
    finally:
        shutdown()
    plain = plain_loop(one["trials"], data=data, spec=spec, bundle=bundle)

    n = args.trials
    fit1 = sum(t.outcome.fit_seconds for t in one["trials"])
    fit2 = sum(t.outcome.fit_seconds for t in two["trials"])
    per_trial_plain = plain["wall"] / n
    per_trial_platform = one["wall"] / n
    overhead = per_trial_platform - per_trial_plain
    floor = fit2 / 2 + two["start"]
    print(f"{n} trials of {args.submission}, {args.epochs} epochs, {args.cases} cases of "
          f"{args.size}x{args.size}; mean fit {fit1 / n:.2f} s (1 worker), {fit2 / n:.2f} s "
          f"(2 workers)")  # fmt: skip
    print(f"(a) plain loop {per_trial_plain:.3f} s/trial (fit {plain['fit'] / n:.3f} s); "
          f"platform, 1 worker {per_trial_platform:.3f} s/trial; overhead "
          f"{overhead:+.3f} s/trial = {overhead / 10 * 100:+.1f}% of a 10 s trial")  # fmt: skip
    print(f"(b) 2-worker sweep {two['wall'] + two['start']:.2f} s incl. worker start "
          f"{two['start']:.2f} s; floor {floor:.2f} s "
          f"(ratio {(two['wall'] + two['start']) / floor:.2f})")  # fmt: skip
    t1, t2 = n / one["wall"], n / two["wall"]
    print(
        f"(c) throughput 1 worker {t1:.2f} trials/s, 2 workers {t2:.2f} trials/s: "
        f"{t2 / t1:.2f}x; worker start {one['start']:.2f} s (1), {two['start']:.2f} s (2)"
    )


if __name__ == "__main__":
    main()
