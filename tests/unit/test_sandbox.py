"""Trial workers drop credentials and the platform's state from their environment."""

from __future__ import annotations

import pytest

from medarena.submissions.sandbox import is_sensitive, scrub_environment


@pytest.mark.parametrize(
    "name",
    [
        "MEDARENA_DB_URL", "MEDARENA_STUDY_DB_URL", "MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_TOKEN",
        "AWS_SECRET_ACCESS_KEY", "PGPASSWORD", "DATABASE_URL", "GITHUB_TOKEN", "my_api_key",
        "SENTRY_DSN", "HF_TOKEN",
    ],
)  # fmt: skip
def test_sensitive_names(name: str) -> None:
    assert is_sensitive(name)


@pytest.mark.parametrize("name", ["PATH", "HOME", "OMP_NUM_THREADS", "RAY_ADDRESS", "LANG"])
def test_ordinary_names_are_kept(name: str) -> None:
    assert not is_sensitive(name)


def test_scrub_removes_only_the_sensitive_ones() -> None:
    env = {"PATH": "/bin", "MEDARENA_DB_URL": "postgresql://u:p@db/x", "PGPASSWORD": "p"}
    assert scrub_environment(env) == ["MEDARENA_DB_URL", "PGPASSWORD"]
    assert env == {"PATH": "/bin"}
