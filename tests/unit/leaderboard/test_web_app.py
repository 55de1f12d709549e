"""The web leaderboard and REST API over a real SQLite store and a one-task catalogue."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from medarena.store import Store
from medarena_leaderboard import create_app
from medarena_leaderboard.svg import ForestRow, curves_plot, forest_plot, nice_ticks

SPLIT = "ab12cd34ef56" + "0" * 52
TOKEN = "organizers-secret-3f9a-7c21d0e5"
# Distinctive hidden test case ids: no public page or endpoint may contain them.
TEST_CASES = ("hidden-test-case-0017", "hidden-test-case-0042")


def _scored(store: Store, task_id: int, name: str, team: str, auc: float, *, trials: int) -> int:
    sid = store.create_submission(
        task_id=task_id, name=name, team=team, sha256="f" * 64, n_trials=trials, seed=0,
        split_hash=SPLIT, study_name=f"study-{name}", mlflow_run_id="",
    )  # fmt: skip
    for number in range(trials):
        store.add_trial(
            sid, number=number, state="complete", params={"lr": 0.001 * (number + 1), "width": 8},
            value=auc - 0.01 * number, best_epoch=2, epochs=4, fit_seconds=1.5, error="",
        )  # fmt: skip
    store.finish_submission(
        sid,
        status="scored",
        scores={"auc": (auc, auc - 0.05, auc + 0.03), "accuracy": (0.7, 0.65, 0.75)},
        case_scores={
            "correct": {TEST_CASES[0]: 1.0, TEST_CASES[1]: 0.0},
            "probability_of_label": {TEST_CASES[0]: 0.8},
        },
        best_params={"lr": 0.001, "width": 8},
        wall_seconds=12.0,
    )
    return sid


@pytest.fixture
def ids(tmp_path: Path) -> dict[str, int]:
    store = Store(f"sqlite:///{tmp_path / 'leaderboard.db'}")
    task_id = store.ensure_task(
        name="tiny-ct", version=1, kind="classification", title="Tiny", split_hash=SPLIT,
        primary="auc",
    )  # fmt: skip
    ids = {
        "logreg": _scored(store, task_id, "logreg", "beta", 0.71, trials=1),
        "cnn": _scored(store, task_id, "cnn", "alpha", 0.90, trials=2),
        "<b>twin</b>": _scored(store, task_id, "<b>twin</b>", "gamma", 0.90, trials=2),
    }
    running = store.create_submission(
        task_id=task_id, name="slow-net", team="delta", sha256="e" * 64, n_trials=4, seed=0,
        split_hash=SPLIT, study_name="s", mlflow_run_id="",
    )  # fmt: skip
    store.add_trial(
        running, number=0, state="failed", params={"lr": 0.1}, value=float("nan"),
        best_epoch=0, epochs=0, fit_seconds=0.2, error="RuntimeError: boom\n  at line 3",
    )  # fmt: skip
    store.add_trial(
        running, number=1, state="complete", params={"lr": 0.01}, value=0.8,
        best_epoch=1, epochs=2, fit_seconds=0.9, error="",
    )  # fmt: skip
    ids["running"] = running
    store.engine.dispose()
    return ids


@pytest.fixture
def client(tmp_path: Path, catalogue: Path, ids: dict[str, int]) -> TestClient:
    app = create_app(db_url=f"sqlite:///{tmp_path / 'leaderboard.db'}", catalogue_dir=catalogue)
    return TestClient(app)


def test_index_lists_the_tasks_with_entries_and_best(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert 'href="http://testserver/tasks/tiny-ct"' in page.text
    assert "Tiny synthetic CT slices for tests" in page.text
    assert "0.900" in page.text
    (task,) = client.get("/api/tasks").json()
    assert task["name"] == "tiny-ct" and task["submissions"] == 3
    assert task["best"] == pytest.approx(0.90) and task["primary_metric"] == "auc"


def test_task_page_ranks_rows_shares_ties_and_draws_the_forest_plot(client: TestClient) -> None:
    page = client.get("/tasks/tiny-ct")
    assert page.status_code == 200
    html = page.text
    positions = [
        html.index(name) for name in (">cnn</a>", "&lt;b&gt;twin&lt;/b&gt;</a>", ">logreg</a>")
    ]
    assert positions == sorted(positions)
    ranks = re.findall(r'<td class="num rank">(\S+)</td>', html)
    assert ranks == ["1", "1", "3"]
    assert "<b>twin</b>" not in html  # escaped, in the table and in the SVG
    assert '<svg class="forest"' in html and html.count('<circle class="point') == 3
    assert "ab12cd34ef56" in html and "fixed train/validation/test split" in html
    assert "↑" in html and "[0.850, 0.930]" in html


def test_leaderboard_api_matches_the_cli_rows(client: TestClient, ids: dict[str, int]) -> None:
    rows = client.get("/api/tasks/tiny-ct/leaderboard").json()
    assert [(r["rank"], r["submission"], r["team"]) for r in rows] == [
        (1, "cnn", "alpha"),
        (1, "<b>twin</b>", "gamma"),
        (3, "logreg", "beta"),
    ]
    first = rows[0]
    assert first["auc"] == pytest.approx(0.90)
    assert first["auc_ci"] == pytest.approx([0.85, 0.93])
    assert first["accuracy_ci"] == pytest.approx([0.65, 0.75])
    assert first["trials"] == 2 and first["submission_id"] == ids["cnn"]
    assert first["finished_at"].endswith("+00:00")


def test_task_api_summarises_the_spec(client: TestClient) -> None:
    task = client.get("/api/tasks/tiny-ct").json()
    assert task["primary_metric"] == "auc" and task["split_hash"] == SPLIT
    assert [(m["name"], m["higher_is_better"]) for m in task["metrics"]] == [
        ("auc", True),
        ("accuracy", True),
    ]
    assert task["budget"]["trials"] == 2 and task["submissions"] == 3


def test_submission_api_and_page(client: TestClient, ids: dict[str, int]) -> None:
    sub = client.get(f"/api/submissions/{ids['cnn']}").json()
    assert sub["status"] == "scored" and sub["task"] == "tiny-ct"
    assert sub["progress"]["done"] == 2 and sub["progress"]["total"] == 2
    assert sub["scores"]["auc"]["ci"] == pytest.approx([0.85, 0.93])
    assert [t["number"] for t in sub["trials"]] == [0, 1]
    page = client.get(f"/submissions/{ids['cnn']}").text
    assert "scored" in page and 'http-equiv="refresh"' not in page
    assert "lr=0.001, width=8" in page and "no MLflow tracking URI" in page


def _organizers_client(tmp_path: Path, catalogue: Path) -> TestClient:
    url = f"sqlite:///{tmp_path / 'leaderboard.db'}"
    return TestClient(create_app(db_url=url, catalogue_dir=catalogue, admin_token=TOKEN))


def test_case_scores_are_served_to_the_organizers_token_only(
    tmp_path: Path, catalogue: Path, ids: dict[str, int]
) -> None:
    client = _organizers_client(tmp_path, catalogue)
    url = f"/api/submissions/{ids['cnn']}/cases"
    rows = client.get(url, headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert rows == [
        {"case_id": TEST_CASES[0], "correct": 1.0, "probability_of_label": 0.8},
        {"case_id": TEST_CASES[1], "correct": 0.0, "probability_of_label": None},
    ]
    missing = client.get(url)
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    for header in (f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", "Bearer x", f"Basic {TOKEN}"):
        answer = client.get(url, headers={"Authorization": header})
        assert answer.status_code in (401, 403), header
        assert "organizers only" in answer.json()["detail"]
        assert not any(case in answer.text for case in TEST_CASES)
    unknown = client.get("/api/submissions/999/cases", headers={"Authorization": f"Bearer {TOKEN}"})
    assert unknown.status_code == 404
    # The answer to a stranger does not say whether the submission exists.
    assert client.get("/api/submissions/999/cases").status_code == 401


def test_case_scores_without_a_configured_token_are_refused_with_how_to_enable(
    client: TestClient, ids: dict[str, int]
) -> None:
    for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Bearer anything"}):
        answer = client.get(f"/api/submissions/{ids['cnn']}/cases", headers=headers)
        assert answer.status_code == 403
        detail = answer.json()["detail"]
        assert "organizers only" in detail and "MEDARENA_ADMIN_TOKEN" in detail
        assert not any(case in answer.text for case in TEST_CASES)


def test_no_public_page_or_endpoint_reveals_test_cases(
    tmp_path: Path, catalogue: Path, ids: dict[str, int]
) -> None:
    client = _organizers_client(tmp_path, catalogue)
    urls = ["/", "/api/tasks", "/tasks/tiny-ct", "/api/tasks/tiny-ct"]
    urls += ["/api/tasks/tiny-ct/leaderboard", "/openapi.json", "/docs", "/tasks/nope"]
    for sid in ids.values():
        urls += [f"/submissions/{sid}", f"/api/submissions/{sid}", f"/api/submissions/{sid}/cases"]
    for url in urls:
        text = client.get(url).text
        assert not any(case in text for case in TEST_CASES), url
        assert "probability_of_label" not in text, url


def test_running_submission_refreshes_and_shows_progress(
    client: TestClient, ids: dict[str, int]
) -> None:
    page = client.get(f"/submissions/{ids['running']}").text
    assert '<meta http-equiv="refresh" content="5">' in page
    assert "2 of 4 trials done" in page and "1 failed" in page
    assert '<progress class="progress" max="4" value="2">' in page
    assert "RuntimeError: boom" in page
    progress = client.get(f"/api/submissions/{ids['running']}").json()["progress"]
    assert progress["best_value"] == pytest.approx(0.8) and progress["status"] == "running"


def test_every_answer_carries_the_security_headers_and_pages_forbid_scripts(
    client: TestClient, ids: dict[str, int]
) -> None:
    pages = ["/", "/tasks/tiny-ct", f"/submissions/{ids['cnn']}", f"/submissions/{ids['running']}"]
    others = ["/tasks/nope", "/api/tasks", "/api/submissions/999", "/static/style.css", "/docs"]
    for url in pages + others:
        answer = client.get(url)
        assert answer.headers["x-content-type-options"] == "nosniff", url
        assert answer.headers["x-frame-options"] == "DENY", url
        assert answer.headers["referrer-policy"] == "no-referrer", url
        if url != "/docs":  # Swagger UI's scripts come from a CDN
            policy = answer.headers["content-security-policy"]
            assert "default-src 'none'" in policy and "script-src" not in policy, url
    for url in pages:  # nothing on a page needs what the policy forbids
        page = client.get(url).text
        assert "<script" not in page and "style=" not in page, url
        assert not re.search(r"<[^>]*\son\w+=", page), url  # no event handler attributes


def test_unknown_task_and_submission_are_404_with_a_helpful_message(client: TestClient) -> None:
    for url in ("/api/tasks/nope", "/api/tasks/nope/leaderboard"):
        answer = client.get(url)
        assert answer.status_code == 404
        assert answer.json()["detail"] == "unknown task 'nope'; known tasks: tiny-ct"
    answer = client.get("/api/submissions/999")
    assert answer.status_code == 404 and "no submission 999" in answer.json()["detail"]
    page = client.get("/tasks/nope")
    assert page.status_code == 404 and "unknown task" in page.text
    assert 'href="http://testserver/tasks/tiny-ct"' in page.text
    assert client.get("/submissions/999").status_code == 404
    assert client.get("/api/submissions/abc").status_code == 422


def test_empty_task_and_static_files(tmp_path: Path, catalogue: Path) -> None:
    app = create_app(db_url=f"sqlite:///{tmp_path / 'empty.db'}", catalogue_dir=catalogue)
    client = TestClient(app)
    assert "No scored submissions yet" in client.get("/tasks/tiny-ct").text
    assert client.get("/api/tasks/tiny-ct/leaderboard").json() == []
    assert client.get("/api/tasks").json()[0]["best"] is None
    css = client.get("/static/style.css")
    assert css.status_code == 200 and "table.board" in css.text


def test_curves_are_drawn_from_the_tracking_store(
    tmp_path: Path, catalogue: Path, ids: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    import medarena_leaderboard.views as views

    calls: list[tuple[str, str, str]] = []

    def fake_curves(uri: str, run_id: str, *, metric: str) -> dict[int, list[tuple[int, float]]]:
        calls.append((uri, run_id, metric))
        return {0: [(0, 0.5), (1, 0.7)], 1: [(0, 0.6), (1, 0.9), (2, 0.85)]}

    monkeypatch.setattr(views, "trial_curves", fake_curves, raising=False)
    store = Store(f"sqlite:///{tmp_path / 'leaderboard.db'}")
    store.set_mlflow_run_id(ids["cnn"], "run-1")
    store.engine.dispose()
    app = create_app(
        db_url=f"sqlite:///{tmp_path / 'leaderboard.db'}",
        catalogue_dir=catalogue,
        tracking_uri="sqlite:///mlflow.db",
    )
    page = TestClient(app).get(f"/submissions/{ids['cnn']}").text
    assert calls == [("sqlite:///mlflow.db", "run-1", "val_auc")]
    assert '<svg class="curves"' in page and page.count("<polyline") == 2


def test_svg_helpers() -> None:
    assert nice_ticks(0.7, 0.95) == [0.7, 0.75, 0.8, 0.85, 0.9, 0.95]
    assert nice_ticks(0, 12, count=7) == [0, 2, 4, 6, 8, 10, 12]
    svg = forest_plot(
        [ForestRow("a<", "t", 0.9, 0.8, 1.0, rank=1), ForestRow("b", "t", None, None, None)],
        metric="AUC",
        higher_is_better=False,
        bounds=(0.0, 1.0),
    )
    assert "a&lt;" in svg and "no score" in svg and "lower is better" in svg
    assert "<svg" in curves_plot({3: [(0, 1.0)]}, metric="m", higher_is_better=True)


def test_the_app_never_imports_ray_torch_or_lightning(
    tmp_path: Path, catalogue: Path, ids: dict[str, int]
) -> None:
    code = f"""
import sys
from fastapi.testclient import TestClient
from medarena_leaderboard import create_app
app = create_app(db_url={f"sqlite:///{tmp_path / 'leaderboard.db'}"!r},
                 catalogue_dir=__import__("pathlib").Path({str(catalogue)!r}))
client = TestClient(app)
for url in ["/", "/tasks/tiny-ct", "/submissions/1", "/api/tasks/tiny-ct/leaderboard"]:
    assert client.get(url).status_code == 200, url
heavy = ["ray", "torch", "lightning", "pytorch_lightning", "mlflow", "optuna"]
print([name for name in heavy if name in sys.modules])
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(out.stdout.strip().splitlines()[-1].replace("'", '"')) == []


def test_app_from_settings_takes_the_token_from_the_environment(
    tmp_path: Path,
    catalogue: Path,
    ids: dict[str, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from medarena_leaderboard.app import app_from_settings

    monkeypatch.setenv("MEDARENA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MEDARENA_DB_URL", f"sqlite:///{tmp_path / 'leaderboard.db'}")
    monkeypatch.setenv("MEDARENA_TASKS_DIR", str(catalogue))
    monkeypatch.setenv("MEDARENA_ADMIN_TOKEN", TOKEN)
    umask = os.umask(0o022)
    try:
        client = TestClient(app_from_settings())
        assert os.umask(0o022) == 0o077  # the app's files are the owner's only
    finally:
        os.umask(umask)
    url = f"/api/submissions/{ids['cnn']}/cases"
    assert client.get(url, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert client.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 403


@pytest.mark.parametrize("token", [b"short", b"x" * 23, "é".encode() * 30, b"tab\t" * 8])
def test_a_guessable_token_is_refused_with_how_to_make_one(
    monkeypatch: pytest.MonkeyPatch, token: bytes
) -> None:
    from medarena.exceptions import UserError
    from medarena.settings import load_settings

    # As the process decodes it: 'é' under UTF-8, surrogate escapes under the C locale (CI).
    monkeypatch.setenv("MEDARENA_ADMIN_TOKEN", os.fsdecode(token))
    with pytest.raises(UserError, match=r"MEDARENA_ADMIN_TOKEN: the token must be at least 24 "
                       r"printable ASCII characters.*secrets\.token_urlsafe"):  # fmt: skip
        load_settings()
    monkeypatch.setenv("MEDARENA_ADMIN_TOKEN", "")  # empty: nobody gets the per-case results
    assert load_settings().admin_token == ""


def test_serve_help() -> None:
    from medarena.cli import app

    result = CliRunner().invoke(app, ["serve", "--help"])
    assert result.exit_code == 0, result.output
    assert "--port" in result.output and "--host" in result.output
