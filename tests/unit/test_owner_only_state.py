"""The state folder and everything the command line creates in it are the owner's only."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from medarena.exceptions import UserError
from medarena.settings import secure_home

REPO = Path(__file__).resolve().parents[2]


def _modes(root: Path) -> dict[str, int]:
    """The permission bits of ``root`` and of everything under it, by relative path."""
    paths = [root, *root.rglob("*")]
    return {str(p.relative_to(root)): stat.S_IMODE(p.lstat().st_mode) for p in paths}


def test_the_cli_keeps_its_state_owner_only(catalogue: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o755)  # an existing home, made with a permissive umask
    home.chmod(0o755)
    submission = tmp_path / "logistic-regression"
    shutil.copytree(REPO / "submissions" / "logistic-regression", submission)
    for path in submission.iterdir():
        path.chmod(0o644)  # copied code must not keep its world-readable mode
    env = {**os.environ, "MEDARENA_HOME": str(home), "MEDARENA_TASKS_DIR": str(catalogue)}
    env.pop("RAY_ADDRESS", None)
    commands = [
        # the task cache, the leaderboard database, the submitted code
        (["submit", str(submission), "--task", "tiny-ct", "--queue"], {}, 0),
        # the operator log (a platform error: no database there)
        (["queue"], {"MEDARENA_DB_URL": "postgresql+psycopg2://nobody@127.0.0.1:1/none"}, 1),
    ]
    for args, extra, expected in commands:
        done = subprocess.run(
            [sys.executable, "-m", "medarena", *args],
            env={**env, **extra}, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == expected, done.stdout + done.stderr
    modes = _modes(home)
    made = {Path(p).parts[0] for p in modes if p != "."}
    assert {"cache", "leaderboard.db", "artifacts", "logs"} <= made, sorted(modes)
    lax = {
        path: oct(mode)
        for path, mode in modes.items()
        if mode != (0o700 if (home / path).is_dir() else 0o600)
    }
    assert lax == {}


def test_secure_home_names_a_home_it_cannot_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    secure_home(home)  # a missing home is left alone
    assert not home.exists()

    def refuse(self: Path, mode: int) -> None:
        raise PermissionError(1, "Operation not permitted")

    home.mkdir(mode=0o750)
    monkeypatch.setattr(Path, "chmod", refuse)
    with pytest.raises(UserError, match=r"cannot make MEDARENA_HOME .* a folder of your own"):
        secure_home(home)
