"""`medarena serve` is the web leaderboard, the REST API and the submission queue:
a submission queued from the command line is run by the queue worker that serve starts, its
progress and score are read over HTTP, and stopping serve stops the worker."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from conftest import cli_env

pytestmark = [pytest.mark.slow, pytest.mark.ray]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"  # a zombie is gone


def test_serve_runs_the_queue_and_stops_its_worker(
    ray_cluster: str,
    catalogue: Path,
    tmp_path: Path,
    copy_baseline,  # type: ignore[no-untyped-def]
) -> None:
    home = tmp_path / "home"
    env = cli_env(home, catalogue, ray_address=ray_cluster)
    queued = subprocess.run(
        [sys.executable, "-m", "medarena", "submit", str(copy_baseline("logistic-regression")),
         "--task", "tiny-ct", "--trials", "2", "--queue", "--format", "json"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert queued.returncode == 0, queued.stderr
    submission_id = json.loads(queued.stdout)["submission_id"]

    serve = subprocess.Popen(
        [sys.executable, "-m", "medarena", "serve", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    assert serve.stdout is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(serve.stdout or []), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while not (found := re.search(r"running on (http://\S+)", "".join(lines))):
            assert serve.poll() is None and time.monotonic() < deadline, "".join(lines)
            time.sleep(0.1)
        base = found.group(1)

        deadline = time.monotonic() + 300
        while True:
            detail = httpx.get(f"{base}/api/submissions/{submission_id}").json()
            if detail["status"] in ("scored", "failed"):
                break
            assert time.monotonic() < deadline, (detail, (home / "logs" / "worker.log").read_text())
            time.sleep(1)
        assert detail["status"] == "scored", (home / "logs" / "worker.log").read_text()
        assert detail["progress"]["done"] == 2 and 0.5 < detail["scores"]["auc"]["value"] <= 1
        (row,) = httpx.get(f"{base}/api/tasks/tiny-ct/leaderboard").json()
        assert row["submission"] == "logistic-regression"
    finally:
        serve.send_signal(signal.SIGINT)
        serve.wait(timeout=120)
        reader.join(timeout=10)
    output = "".join(lines)
    worker_pid = int(re.search(r"queue worker: pid (\d+)", output).group(1))  # type: ignore[union-attr]
    assert "queue worker stopped" in output, output
    assert serve.returncode == 0 and "Traceback" not in output, output  # a graceful stop
    assert not _pid_alive(worker_pid)
    assert "submission" in (home / "logs" / "worker.log").read_text()
