"""The real user path: `medarena submit` and `medarena leaderboard` in fresh processes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import cli_env

pytestmark = [pytest.mark.slow, pytest.mark.ray]


def _medarena(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "medarena", *args],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip


def test_submit_then_leaderboard_json(
    ray_cluster: str, catalogue: Path, tmp_path: Path, copy_baseline
) -> None:  # type: ignore[no-untyped-def]
    env = cli_env(tmp_path / "home", catalogue, ray_address=ray_cluster)
    submitted = _medarena(
        "submit", str(copy_baseline("small-cnn")), "--task", "tiny-ct", "--trials", "2",
        "--team", "cli", "--format", "json", env=env,
    )  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr
    result = json.loads(submitted.stdout)
    assert result["trials"] == 2 and 0.5 < result["metrics"]["auc"]["value"] <= 1.0

    board = _medarena("leaderboard", "tiny-ct", "--format", "json", env=env)
    assert board.returncode == 0, board.stderr
    (row,) = json.loads(board.stdout)
    assert row["rank"] == 1 and row["submission"] == "small-cnn" and row["team"] == "cli"
    assert row["auc"] == pytest.approx(result["metrics"]["auc"]["value"])
    assert row["auc_ci"] == pytest.approx(result["metrics"]["auc"]["ci"])

    csv = _medarena("leaderboard", "tiny-ct", "--format", "csv", env=env)
    assert csv.stdout.splitlines()[0].startswith("rank,submission,team,trials,auc,")
