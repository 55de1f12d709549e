"""``medarena serve``, ``worker`` and ``submit``, stopped by SIGINT, SIGTERM or SIGKILL, leave no
process behind: not serve's queue worker, not the local Ray a driver started (gcs_server, raylet,
agents, trial workers, their sandboxes).

Each test gives its command a unique ``MEDARENA_HOME``, collects the command's descendants from
/proc just before the signal, and then waits for every one of them, and every process whose
command line or environment names that home, to be gone.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.ray,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
]

REPO = Path(__file__).resolve().parents[2]
SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGKILL]
GONE_WITHIN_S = 15.0  # reaping takes 1-3 s; room for a loaded machine


def _processes() -> dict[int, tuple[int, bytes, str]]:
    """The live processes: pid -> (parent pid, start time, command line and environment)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_bytes().rsplit(b")", 1)[1].split()
            text = (entry / "cmdline").read_bytes() + b"\0" + (entry / "environ").read_bytes()
        except OSError:
            continue
        if fields[0] != b"Z":  # a zombie has ended
            found[int(entry.name)] = (int(fields[1]), fields[19], text.decode(errors="replace"))
    return found


def _descendants(pid: int) -> dict[int, bytes]:
    """The live descendants of ``pid``, with their start times (a pid may be reused)."""
    procs = _processes()
    tree: dict[int, bytes] = {}
    parents = {pid}
    while more := {p for p, (parent, _, _) in procs.items() if parent in parents} - tree.keys():
        tree.update({p: procs[p][1] for p in more})
        parents |= more
    return tree


def _command_lines(pids: dict[int, bytes]) -> list[str]:
    procs = _processes()
    return [procs[p][2].split("\0")[0][:100] for p in pids if p in procs]


def _left(tree: dict[int, bytes], home: Path) -> dict[int, bytes]:
    """What is still alive of ``tree``, and any process naming ``home``."""
    procs = _processes()
    left = {p: start for p, start in tree.items() if p in procs and procs[p][1] == start}
    naming = {p: start for p, (_, start, text) in procs.items() if str(home) in text}
    naming.pop(os.getpid(), None)
    return left | naming


def _start(args: list[str], home: Path, catalogue: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "MEDARENA_HOME": str(home), "MEDARENA_TASKS_DIR": str(catalogue)}
    env.pop("RAY_ADDRESS", None)
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "medarena", *args], stdout=out, stderr=subprocess.STDOUT, env=env
        )


def _wait_for(
    what: str, check: Callable[[], bool], process: subprocess.Popen[bytes], log: Path
) -> None:
    deadline = time.monotonic() + 120
    while not check():
        assert process.poll() is None, f"ended before {what}: {log.read_text()}"
        assert time.monotonic() < deadline, f"no {what} in 120 s: {log.read_text()}"
        time.sleep(0.2)


def _ray_is_up(pid: int) -> bool:
    """Ray's raylet and its agents (what outlived a killed driver) run under ``pid``."""
    lines = _command_lines(_descendants(pid))
    agents = sum(line.startswith("ray::") for line in lines)
    return any("raylet" in line for line in lines) and agents >= 2


def _stop_and_check(
    process: subprocess.Popen[bytes], sig: signal.Signals, home: Path, log: Path
) -> None:
    """Send ``sig``; the command ends, and so does everything it started, within seconds."""
    tree = _descendants(process.pid)
    assert tree, "the command started no process"
    process.send_signal(sig)
    process.wait(timeout=120)
    deadline = time.monotonic() + GONE_WITHIN_S
    while (left := _left(tree, home)) and time.monotonic() < deadline:
        time.sleep(0.2)
    survivors = _command_lines(left)
    for pid in left:  # not left to the next test
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    assert not left, (
        f"left after {sig.name}: {survivors} (exit {process.returncode}); {log.read_text()[-3000:]}"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
def test_serve_leaves_no_queue_worker(sig: signal.Signals, catalogue: Path, tmp_path: Path) -> None:
    home, log = tmp_path / "home", tmp_path / "serve.log"
    serve = _start(["serve", "--port", str(_free_port())], home, catalogue, log)
    _wait_for("server", lambda: "running on http" in log.read_text(), serve, log)
    worker = int(re.search(r"queue worker: pid (\d+)", log.read_text()).group(1))  # type: ignore[union-attr]
    assert worker in _descendants(serve.pid)
    _stop_and_check(serve, sig, home, log)
    if sig is not signal.SIGKILL:  # a graceful stop
        assert serve.returncode == 0 and "queue worker stopped" in log.read_text()


def _queue(submission: Path, home: Path, catalogue: Path, tmp_path: Path) -> None:
    log = tmp_path / "queue.log"
    queued = _start(
        ["submit", str(submission), "--task", "tiny-ct", "--trials", "50", "--queue"],
        home, catalogue, log,
    )  # fmt: skip
    assert queued.wait(timeout=120) == 0, log.read_text()


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
def test_worker_leaves_no_ray_process(
    sig: signal.Signals,
    catalogue: Path,
    tmp_path: Path,
    copy_baseline: Callable[[str], Path],
) -> None:
    home, log = tmp_path / "home", tmp_path / "worker.log"
    _queue(copy_baseline("logistic-regression"), home, catalogue, tmp_path)
    worker = _start(["worker"], home, catalogue, log)
    _wait_for("local Ray", lambda: _ray_is_up(worker.pid), worker, log)
    _stop_and_check(worker, sig, home, log)


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
def test_submit_leaves_no_ray_process(
    sig: signal.Signals,
    catalogue: Path,
    tmp_path: Path,
    copy_baseline: Callable[[str], Path],
) -> None:
    home, log = tmp_path / "home", tmp_path / "submit.log"
    args = ["submit", str(copy_baseline("logistic-regression")), "--task", "tiny-ct"]
    submit = _start([*args, "--trials", "50"], home, catalogue, log)
    _wait_for("local Ray", lambda: _ray_is_up(submit.pid), submit, log)
    _stop_and_check(submit, sig, home, log)


def test_serve_killed_stops_its_worker_and_the_workers_ray(
    catalogue: Path,
    tmp_path: Path,
    copy_baseline: Callable[[str], Path],
) -> None:
    """docker stop gone wrong: serve is killed while its queue worker runs a submission."""
    home, log = tmp_path / "home", tmp_path / "serve.log"
    _queue(copy_baseline("logistic-regression"), home, catalogue, tmp_path)
    serve = _start(["serve", "--port", str(_free_port())], home, catalogue, log)
    _wait_for("local Ray", lambda: _ray_is_up(serve.pid), serve, log)
    _stop_and_check(serve, signal.SIGKILL, home, log)
