"""The command line: listing, showing, clear errors with exit status 2 for bad input, and closing
what each command opens."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medarena.cli import app

runner = CliRunner()


@pytest.fixture
def env(catalogue: Path, tmp_path: Path) -> dict[str, str]:
    return {"MEDARENA_HOME": str(tmp_path / "home"), "MEDARENA_TASKS_DIR": str(catalogue)}


def test_tasks_list_and_show(env: dict[str, str]) -> None:
    listed = runner.invoke(app, ["tasks", "list", "--format", "json"], env=env)
    assert listed.exit_code == 0, listed.output
    assert [t["name"] for t in json.loads(listed.output)] == ["tiny-ct"]
    shown = runner.invoke(app, ["tasks", "show", "tiny-ct", "--format", "json"], env=env)
    assert shown.exit_code == 0, shown.output
    info = json.loads(shown.output)
    assert sum(info["sizes"].values()) == 600 and len(info["split_hash"]) == 64
    assert info["metrics"] == ["auc", "accuracy"]
    assert not (Path(env["MEDARENA_HOME"]) / "logs").exists()  # nothing logged, no log folder


def test_unknown_task_lists_the_known_ones(env: dict[str, str], copy_baseline) -> None:  # type: ignore[no-untyped-def]
    for args in (
        ["submit", str(copy_baseline("small-cnn")), "--task", "nope"],
        ["leaderboard", "nope"],
        ["tasks", "show", "nope"],
    ):
        result = runner.invoke(app, args, env=env)
        assert result.exit_code == 2, result.output
        assert "unknown task 'nope'" in result.output and "tiny-ct" in result.output


@pytest.mark.parametrize(
    ("yaml_text", "model", "expected"),
    [
        (None, None, "submission.yaml: file not found"),
        ("name: x\nentry_point: [oops\n", "class Net: ...\n", "invalid YAML"),
        ("name: x\nentry_point: nothere.py:Net\n", None, "file 'nothere.py' not found"),
        ("name: x\nentry_point: model.py:Other\n", "class Net: ...\n", "class 'Other' is not"),
    ],
)
def test_bad_submissions_exit_2_and_write_nothing(
    env: dict[str, str], tmp_path: Path, yaml_text: str | None, model: str | None, expected: str
) -> None:
    folder = tmp_path / "submission"
    folder.mkdir()
    if yaml_text is not None:
        (folder / "submission.yaml").write_text(yaml_text)
    if model is not None:
        (folder / "model.py").write_text(model)
    result = runner.invoke(app, ["submit", str(folder), "--task", "tiny-ct"], env=env)
    assert result.exit_code == 2, result.output
    assert expected in result.output and "Traceback" not in result.output
    board = runner.invoke(app, ["leaderboard", "tiny-ct", "--format", "json"], env=env)
    assert board.exit_code == 0 and json.loads(board.output) == []


@pytest.mark.parametrize(
    "team", ["", " padded", "padded ", "a/b", "tab\tname", "x" * 65, "\udcff", "=1+2", "@cmd"]
)
@pytest.mark.parametrize("queue", [[], ["--queue"]])
def test_bad_team_names_exit_2_and_write_nothing(
    env: dict[str, str],
    copy_baseline,
    team: str,
    queue: list[str],  # type: ignore[no-untyped-def]
) -> None:
    args = ["submit", str(copy_baseline("small-cnn")), "--task", "tiny-ct", "--team", team]
    result = runner.invoke(app, [*args, *queue], env=env)
    assert result.exit_code == 2, result.output
    assert "a team name is 1 to 64 printable characters" in " ".join(result.output.split())
    board = runner.invoke(app, ["queue", "--format", "json"], env=env)
    assert board.exit_code == 0 and json.loads(board.output) == [], board.output


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "MEDARENA_ALLOW_UNSANDBOXED",
            "maybe",
            "MEDARENA_ALLOW_UNSANDBOXED: Input should be a valid boolean",
        ),
        ("MEDARENA_ADMIN_TOKEN", "hunter2", "MEDARENA_ADMIN_TOKEN: the token must be at least 24"),
    ],
)
def test_a_bad_setting_names_its_variable_and_exits_2(
    env: dict[str, str], variable: str, value: str, message: str
) -> None:
    result = runner.invoke(app, ["tasks", "list"], env={**env, variable: value})
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()) and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("nonsense", r"MEDARENA_DB_URL\) is not a database URL"),
        (
            "oracle://u:pw@db/x",
            r"oracle://u:\*\*\*@db/x \(MEDARENA_DB_URL\) needs a driver this installation lacks",
        ),
    ],
)
def test_a_database_url_that_cannot_work_is_a_users_error(
    env: dict[str, str], url: str, message: str
) -> None:
    result = runner.invoke(app, ["queue"], env={**env, "MEDARENA_DB_URL": url})
    assert result.exit_code == 2, result.output
    assert re.search(message, " ".join(result.output.split())), result.output
    assert ":pw@" not in result.output


def test_an_ascii_terminal_gets_the_board_not_an_encoding_error(
    env: dict[str, str],
) -> None:
    """Under the C locale stdout is ASCII, and the board's dashes cannot be encoded."""
    ascii_env = {**os.environ, **env, "LC_ALL": "C", "PYTHONUTF8": "0"}
    ascii_env.pop("PYTHONIOENCODING", None)
    run = subprocess.run(
        [sys.executable, "-m", "medarena", "leaderboard", "tiny-ct"],
        env=ascii_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "no scored submissions yet" in run.stdout


def test_platform_errors_are_logged_not_shown(env: dict[str, str], copy_baseline) -> None:  # type: ignore[no-untyped-def]
    env = {**env, "MEDARENA_DB_URL": "postgresql+psycopg2://nobody@127.0.0.1:1/none"}
    result = runner.invoke(
        app, ["submit", str(copy_baseline("small-cnn")), "--task", "tiny-ct"], env=env
    )
    assert result.exit_code == 1
    assert "an unexpected error occurred" in result.output and "Traceback" not in result.output
    log = Path(env["MEDARENA_HOME"]) / "logs" / "medarena.log"
    assert "Traceback" in log.read_text()


def test_help_is_fast_to_import() -> None:
    """`medarena --help` must not import torch, ray, mlflow or lightning."""
    import subprocess
    import sys

    code = (
        "import sys; from medarena.cli import app; "
        "heavy = ('torch', 'ray', 'mlflow', 'lightning', 'optuna'); "
        "print([m for m in heavy if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_commands_close_the_arena_or_store_they_open(  # type: ignore[no-untyped-def]
    env: dict[str, str], copy_baseline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every command closes the arena or the store it opens, also when it fails."""
    from sqlalchemy.engine import Engine

    from medarena.arena import Arena
    from medarena.store import Store

    opened: list[object] = []
    closed: list[object] = []
    arena_init, arena_close, store_init = Arena.__init__, Arena.close, Store.__init__

    def open_arena(self: Arena, *args: object, **kwargs: object) -> None:
        arena_init(self, *args, **kwargs)  # type: ignore[arg-type]
        opened.append(self)

    def close_arena(self: Arena, *, stop_cluster: bool = True) -> None:
        closed.append(self)
        arena_close(self, stop_cluster=stop_cluster)

    def open_store(self: Store, url: str) -> None:
        store_init(self, url)
        opened.append(self.engine)

    monkeypatch.setattr(Arena, "__init__", open_arena)
    monkeypatch.setattr(Arena, "close", close_arena)
    monkeypatch.setattr(Store, "__init__", open_store)
    monkeypatch.setattr(Engine, "dispose", lambda self, close=True: closed.append(self))
    submission = str(copy_baseline("small-cnn"))
    for args, code in (
        (["submit", submission, "--task", "tiny-ct", "--queue"], 0),
        (["queue"], 0),
        (["progress", "1"], 0),
        (["cancel", "1"], 0),
        (["leaderboard", "tiny-ct"], 0),
        (["leaderboard", "nope"], 2),
    ):
        opened.clear()
        closed.clear()
        result = runner.invoke(app, args, env=env)
        assert result.exit_code == code, result.output
        # An arena's own store is the arena's to close: a command answers for what it opened.
        mine = [x for x in opened if isinstance(x, Arena)] or opened
        assert mine, args
        assert all(any(c is x for c in closed) for x in mine), args


@pytest.mark.parametrize("command", ["progress", "cancel"])
def test_an_unknown_submission_is_a_users_error(env: dict[str, str], command: str) -> None:
    result = runner.invoke(app, [command, "99"], env=env)
    assert result.exit_code == 2, result.output
    assert "there is no submission 99" in result.output


def test_stdout_carries_only_the_results_while_a_command_runs(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What else prints to stdout during a command (Ray's notes about its workers come from a
    thread at any time) goes to stderr: ``--format json`` stays parseable."""
    import sys

    from medarena.store import Store

    queue = Store.queue

    def chatty_queue(self: Store):  # type: ignore[no-untyped-def]
        print("(raylet) A worker died or was killed while executing a task")
        sys.stdout.write("more noise\n")
        return queue(self)

    monkeypatch.setattr(Store, "queue", chatty_queue)
    result = runner.invoke(app, ["queue", "--format", "json"], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == []
    assert "(raylet) A worker died" in result.stderr and "more noise" in result.stderr
