"""Shared fixtures: a tiny task catalogue, isolated state folders, a Ray cluster per session."""

from __future__ import annotations

import os
import shutil
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from medarena.arena import Arena, ArenaConfig

# The pool checks ship in the package: pytest explains their failed asserts as it does a test's.
pytest.register_assert_rewrite("medarena.testing.pool_checks")

REPO = Path(__file__).resolve().parents[1]
BASELINES = REPO / "submissions"
CANARY = "MEDARENA_CANARY_DB_URL"

TINY_TASK = """\
name: tiny-ct
title: Tiny synthetic CT slices for tests
kind: classification
version: 1
classes: [normal, cyst, hyperdense lesion, metastases]
dataset:
  reader: synthetic-ct-slices
  params: {n_cases: 600, image_size: 32, noise_hu: 15, seed: 3}
split: {method: stratified, train: 0.5, val: 0.25, test: 0.25, seed: 1}
metrics: {primary: auc, report: [accuracy]}
budget: {trials: 2, max_epochs: 8, patience: 3, batch_size: 32, cpus_per_trial: 1, seed: 0}
"""


@pytest.fixture(autouse=True)
def _environment_restored() -> Iterator[None]:
    """Each test leaves ``os.environ`` as it found it: a library that exports a setting (as
    ``mlflow.set_tracking_uri`` does) would otherwise steer every later test's subprocesses."""
    before = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(before)


@pytest.fixture
def catalogue(tmp_path: Path) -> Path:
    """A task catalogue with the tiny task only."""
    root = tmp_path / "tasks"
    (root / "tiny-ct").mkdir(parents=True)
    (root / "tiny-ct" / "task.yaml").write_text(TINY_TASK)
    return root


@pytest.fixture
def make_submission(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Write a submission folder from a yaml text and a model.py text; returns its path."""

    def make(name: str, yaml_text: str, model: str | None = None) -> Path:
        folder = tmp_path / "subs" / name
        folder.mkdir(parents=True)
        (folder / "submission.yaml").write_text(textwrap.dedent(yaml_text))
        if model is not None:
            (folder / "model.py").write_text(textwrap.dedent(model))
        return folder

    return make


@pytest.fixture
def copy_baseline(tmp_path: Path):  # type: ignore[no-untyped-def]
    def copy(name: str) -> Path:
        target = tmp_path / "baselines" / name
        shutil.copytree(BASELINES / name, target)
        return target

    return copy


_TEMPLATES: dict[str, Path] = {}


@pytest.fixture(scope="session", autouse=True)
def _template_folder(tmp_path_factory: pytest.TempPathFactory) -> None:
    _TEMPLATES["folder"] = tmp_path_factory.mktemp("templates")


def seed_mlflow_store(path: Path) -> None:
    """Put an empty MLflow store at ``path``, copied from one made once per session.

    MLflow creates a new SQLite store by running its schema migrations, about 1.5 s each time,
    which every test's home would repeat. The platform's own first open of a store is still
    tested, where it matters: by processes racing to open one (``test_concurrent_open.py``),
    by the process-hygiene and owner-only tests, and by ``make demo``.
    """
    template = _TEMPLATES["folder"] / "mlflow.db"
    if not template.exists():
        from mlflow.tracking import MlflowClient

        MlflowClient(f"sqlite:///{template}").search_experiments()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    shutil.copyfile(template, path)
    path.chmod(0o600)


def cli_env(home: Path, catalogue: Path, *, ray_address: str | None) -> dict[str, str]:
    """The environment of a ``medarena`` command on ``catalogue`` with its state in ``home``
    (its MLflow store seeded): attached to the Ray cluster at ``ray_address`` (the session's,
    saving each command a cluster start), or starting its own when ``None``. Ray and MLflow
    settings this process inherited are dropped."""
    seed_mlflow_store(home / "mlflow.db")
    env = {**os.environ, "MEDARENA_HOME": str(home), "MEDARENA_TASKS_DIR": str(catalogue)}
    for inherited in ("RAY_ADDRESS", "MLFLOW_TRACKING_URI", "MEDARENA_MLFLOW_TRACKING_URI"):
        env.pop(inherited, None)
    if ray_address is not None:
        env["RAY_ADDRESS"] = ray_address
    return env


def arena_config(catalogue_dir: Path, state: Path) -> ArenaConfig:
    """Everything of an arena under ``state``: cache, SQLite databases, MLflow (seeded, see
    :func:`seed_mlflow_store`), artifacts."""
    from medarena.arena import ArenaConfig

    if not (state / "mlflow.db").exists():
        seed_mlflow_store(state / "mlflow.db")
    return ArenaConfig(
        catalogue_dir=catalogue_dir,
        cache_dir=state / "cache",
        db_url=f"sqlite:///{state / 'leaderboard.db'}",
        study_url=f"sqlite:///{state / 'studies.db'}",
        tracking_uri=f"sqlite:///{state / 'mlflow.db'}",
        artifacts_dir=state / "artifacts",
    )


@pytest.fixture
def arena(ray_cluster: str, catalogue: Path, tmp_path: Path) -> Iterator[Arena]:
    """An arena on the tiny catalogue, with its state in a temporary folder."""
    from medarena.arena import Arena

    arena = Arena(arena_config(catalogue, tmp_path / "state"))
    yield arena
    arena.close(stop_cluster=False)


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[str]:
    """One local Ray instance (2 CPUs, free ports) for every test that needs it; its address, for
    commands the tests run (:func:`cli_env`).

    It starts with a canary credential in its environment, which trial workers must drop.
    """
    from medarena.execution import connect, shutdown

    os.environ[CANARY] = "postgresql://user:secret@db/leaderboard"
    try:
        cluster = connect(None, num_cpus=2)
    finally:
        del os.environ[CANARY]
    yield cluster.address
    shutdown()


def _postgres_url() -> str | None:
    return os.environ.get("MEDARENA_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty leaderboard database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'leaderboard.db'}"
        return
    base = _postgres_url() or "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    name = f"medarena_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        if os.environ.get("MEDARENA_REQUIRE_POSTGRES"):
            raise
        pytest.skip(f"PostgreSQL not reachable at {base}: {exc}")
    url = str(admin.url.set(database=name).render_as_string(hide_password=False))
    try:
        yield url
    finally:
        from sqlalchemy import create_engine as ce

        ce(url).dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
