"""`medarena demo` of this checkout against an earlier revision, side by side, and their boards.

Run: ``python bench/bench_demo.py --baseline REV [--rounds 2]``. Checks out REV in a temporary
git worktree, then runs the demo of each, alternating (REV, this, REV, this, ...) so that a shared
machine's drift hits both, each with a fresh ``MEDARENA_HOME`` and the same virtual environment.
Prints each run's wall time, the ratio of the medians, and whether the leaderboards (submission,
rank and every metric with its interval) are identical.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TASKS = ("ct-liver-lesions", "ct-organs-2d", "lung-nodules")


def run_demo(checkout: Path, home: Path) -> tuple[float, dict[str, object]]:
    """Wall time of the demo of ``checkout``, and its leaderboards as JSON."""
    env = {
        **os.environ,
        "MEDARENA_HOME": str(home),
        "PYTHONPATH": f"{checkout / 'platform'}:{checkout / 'leaderboard'}",
    }
    command = [sys.executable, "-m", "medarena"]
    start = time.perf_counter()
    subprocess.run([*command, "demo"], cwd=checkout, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - start
    boards = {}
    for task in TASKS:
        out = subprocess.run(
            [*command, "leaderboard", task, "--format", "json"],
            cwd=checkout, env=env, check=True, capture_output=True, text=True,
        )  # fmt: skip
        rows = json.loads(out.stdout)
        boards[task] = [
            {k: v for k, v in row.items() if k not in {"finished_at", "mlflow_run_id",
                                                       "submission_id", "sandboxed"}}
            for row in rows
        ]  # fmt: skip
    return wall, boards


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="the git revision to compare with")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="medarena-bench-demo-"))
    old = root / "baseline"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(old),
                    args.baseline], check=True, capture_output=True)  # fmt: skip
    times: dict[str, list[float]] = {"baseline": [], "this": []}
    boards: dict[str, dict[str, object]] = {}
    try:
        for i in range(args.rounds):
            for name, checkout in (("baseline", old), ("this", REPO)):
                wall, board = run_demo(checkout, root / f"home-{name}-{i}")
                times[name].append(wall)
                boards[name] = board
                print(f"round {i + 1}: {name} demo {wall:.1f} s", flush=True)
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(old)],
                       check=False, capture_output=True)  # fmt: skip
    before, after = statistics.median(times["baseline"]), statistics.median(times["this"])
    print(f"median: {args.baseline} {before:.1f} s, this checkout {after:.1f} s: "
          f"{after / before:.2f}x ({(after / before - 1) * 100:+.0f}%)")  # fmt: skip
    same = boards["baseline"] == boards["this"]
    print(f"leaderboards identical: {same}")
    if not same:
        for task in TASKS:
            print(task, json.dumps(boards["baseline"][task]), json.dumps(boards["this"][task]))


if __name__ == "__main__":
    main()
