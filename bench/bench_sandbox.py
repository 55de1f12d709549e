"""The price of the sandbox: sandboxed trials against the same trials run in this process.

Run: ``nice -n 10 python bench/bench_sandbox.py`` (``--trials``, ``--epochs``, ``--submission``).
Prints one line per figure; docs/benchmarks.md has the results. Side by side in one run, on the
same configurations and seeds, one thread each:

- import: a fresh Python importing torch and Lightning (what every new process pays);
- first trial: a supervisor started cold (its spare sandbox imports torch) running trial 0,
  against trial 0 run in this process; the target is at most the import time plus 1 s more;
- later trials: each sandboxed trial against the same trial in this process, interleaved so
  that drift of a shared machine hits both; the target is at most 0.5 s more per trial;
- inference: the best weights predicting the test inputs in a new sandbox (started ahead).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

from bench_execution import bench_task
from inprocess import load_class, run_in_process

warnings.simplefilter("ignore")


def import_seconds(runs: int = 2) -> float:
    """Wall time of a fresh interpreter importing torch and Lightning (the fastest of ``runs``)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", "import torch, lightning.pytorch"],
            check=True,
            capture_output=True,
        )
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--cases", type=int, default=800)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--submission", default="small-cnn")
    args = parser.parse_args()

    from medarena.execution import TrialJob
    from medarena.execution.supervisor import Supervisor
    from medarena.sandbox import SandboxLimits
    from medarena.submissions import load_submission
    from medarena.tuning.jobs import base_config, dry_run_job

    root, spec, task_data = bench_task(args)
    data = task_data.worker_data()
    bundle = load_submission(Path(__file__).resolve().parents[1] / "submissions" / args.submission)
    middle = dry_run_job(bundle, base_config(bundle, spec, use_gpu=False)).config
    configs = [replace(middle, seed=seed) for seed in range(args.trials)]

    imports = import_seconds()

    start = time.perf_counter()
    supervisor = Supervisor(data, limits=SandboxLimits())
    first = supervisor.run(TrialJob(key=0, config=configs[0], files=bundle.files))
    first_sandboxed = time.perf_counter() - start
    assert first.ok, first.error

    import torch

    torch.set_num_threads(1)
    (root / "code").mkdir()
    cls = load_class(bundle, root / "code")
    run_in_process(cls, data, replace(configs[0], max_epochs=1))  # warm-up (imports, caches)
    start = time.perf_counter()
    run_in_process(cls, data, configs[0])
    first_plain = time.perf_counter() - start

    overheads, plain_times = [], []
    for config in configs[1:]:
        start = time.perf_counter()
        run_in_process(cls, data, config)
        plain = time.perf_counter() - start
        start = time.perf_counter()
        outcome = supervisor.run(TrialJob(key=0, config=config, files=bundle.files))
        sandboxed = time.perf_counter() - start
        assert outcome.ok, outcome.error
        plain_times.append(plain)
        overheads.append(sandboxed - plain)
    assert first.weights is not None
    start = time.perf_counter()
    predicted = supervisor.predict(configs[0], bundle.files, first.weights)
    inference = time.perf_counter() - start
    assert predicted.ok, predicted.error
    supervisor.close()

    mean_plain = statistics.mean(plain_times)
    extra = first_sandboxed - first_plain
    mean_over, median_over = statistics.mean(overheads), statistics.median(overheads)
    print(
        f"{args.trials} trials of {args.submission}, {args.epochs} epochs, {args.cases} cases "
        f"of {args.size}x{args.size}; in-process trial {mean_plain:.2f} s"
    )
    print(f"import torch + Lightning in a new process: {imports:.2f} s")
    print(
        f"first trial: sandboxed {first_sandboxed:.2f} s (cold start included), in-process "
        f"{first_plain:.2f} s: {extra:+.2f} s = import {imports:.2f} s "
        f"{extra - imports:+.2f} s (target: import + 1 s)"
    )
    print(
        f"later trials: overhead {mean_over:+.3f} s/trial (median {median_over:+.3f}, "
        f"max {max(overheads):+.3f}; target 0.5 s)"
    )
    print(f"inference in a new sandbox (started ahead): {inference:.2f} s")


if __name__ == "__main__":
    main()
