"""The price of the box's seccomp filter: the same code in bubblewrap with and without it.

Run: ``python bench/bench_seccomp.py`` (``--rounds``). Side by side, alternating, each round a
fresh box of each kind; prints the median of each figure and the ratio:

- system calls: a million ``getppid()`` (the filter runs on every system call; the worst case);
- compute: twenty 2000 x 2000 float64 matrix products (what training mostly does).
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from medarena.sandbox.bubblewrap import SECCOMP_FD
from medarena.sandbox.seccomp import compiled_filter

WORK = """
import os, time
import numpy as np
start = time.perf_counter()
for _ in range(1_000_000):
    os.getppid()
calls = time.perf_counter() - start
x = np.random.default_rng(0).random((2000, 2000))
start = time.perf_counter()
for _ in range(20):
    x @ x
print(calls, time.perf_counter() - start)
"""
BOX = [
    "bwrap", "--unshare-all", "--unshare-user", "--uid", "65534", "--gid", "65534",
    "--disable-userns", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
    "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
]  # fmt: skip


def run(program: Path | None) -> tuple[float, float]:
    """(system-call seconds, compute seconds) of :data:`WORK` in a box, filtered or not; the
    filter reaches bubblewrap as the platform hands it over (an open descriptor)."""
    command = [*BOX, sys.executable, "-c", WORK]
    if program is not None:
        command[1:1] = ["--seccomp", str(SECCOMP_FD)]
        redirect = f'exec "$@" {SECCOMP_FD}<{shlex.quote(str(program))}'
        command = ["/bin/sh", "-c", redirect, "sh", *command]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    calls, compute = (float(v) for v in out.split())
    return calls, compute


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    compiled = compiled_filter()
    if compiled is None:
        sys.exit("no libseccomp here: nothing to compare")
    with tempfile.TemporaryDirectory() as tmp:
        program = Path(tmp) / "seccomp.bpf"
        program.write_bytes(compiled)
        plain, filtered = [], []
        for _ in range(args.rounds):
            plain.append(run(None))
            filtered.append(run(program))
    for i, name in enumerate(("1M getppid() calls", "20 matrix products")):
        a = statistics.median(r[i] for r in plain)
        b = statistics.median(r[i] for r in filtered)
        print(f"{name}: {a:.3f} s without the filter, {b:.3f} s with it: {b / a:.2f}x")
    a, b = (statistics.median(r[0] for r in runs) for runs in (plain, filtered))
    print(f"per system call: +{(b - a) * 1000:.0f} ns")


if __name__ == "__main__":
    main()
