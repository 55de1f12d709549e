"""The platform's settings, read from the environment (``MEDARENA_*`` and the tools' own names).

Only the command line and the web app read settings; every other module takes what it needs as
arguments, so that tests and embedding programs can pass their own values.
"""

from __future__ import annotations

import stat
from pathlib import Path

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from medarena.exceptions import UserError

OWNER_ONLY_UMASK = 0o077
"""The command line's and the web app's umask: what they create (and the processes they start:
the queue worker, a local Ray) is the owner's only, folders 0700 and files 0600."""


MIN_TOKEN_LENGTH = 24
"""The shortest organizers' token accepted (``secrets.token_urlsafe(32)`` gives 43)."""


class Settings(BaseSettings):
    """Where the platform keeps its state and which services it talks to.

    Nothing has to be set: by default everything lives under ``./.medarena`` (SQLite databases,
    a local MLflow store, the data cache) and a local Ray instance is started on free ports.
    """

    model_config = SettingsConfigDict(env_prefix="MEDARENA_", extra="ignore")

    home: Path = Field(default=Path(".medarena"), description="state directory")
    db_url: str | None = Field(default=None, description="leaderboard database URL")
    study_db_url: str | None = Field(
        default=None, description="Optuna's database URL; never the leaderboard's database"
    )
    tasks_dir: Path | None = Field(default=None, description="task catalogue folder")
    submissions_dir: Path | None = Field(default=None, description="baseline submissions folder")
    mlflow_tracking_uri: str | None = Field(
        default=None,
        validation_alias=AliasChoices("MLFLOW_TRACKING_URI", "MEDARENA_MLFLOW_TRACKING_URI"),
    )
    ray_address: str | None = Field(
        default=None, validation_alias=AliasChoices("RAY_ADDRESS", "MEDARENA_RAY_ADDRESS")
    )
    allow_unsandboxed: bool = Field(
        default=False,
        description="run submitted code without a sandbox where bubblewrap cannot run; for "
        "trusted submissions only (their results are marked unsandboxed)",
    )
    admin_token: str | None = Field(
        default=None,
        description="organizers' bearer token for the web app's per-case test results; "
        "unset or empty: nobody gets them over HTTP",
    )

    @field_validator("admin_token")
    @classmethod
    def _check_token(cls, value: str | None) -> str | None:
        if value and (
            len(value) < MIN_TOKEN_LENGTH or not value.isascii() or not value.isprintable()
        ):
            raise ValueError(
                f"the token must be at least {MIN_TOKEN_LENGTH} printable ASCII characters, "
                "so that it cannot be guessed; make one with "
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
            )
        return value

    @property
    def leaderboard_url(self) -> str:
        return self.db_url or f"sqlite:///{self.home.resolve() / 'leaderboard.db'}"

    @property
    def optuna_url(self) -> str:
        return self.study_db_url or f"sqlite:///{self.home.resolve() / 'studies.db'}"

    @property
    def tracking_uri(self) -> str:
        return self.mlflow_tracking_uri or f"sqlite:///{self.home.resolve() / 'mlflow.db'}"

    @property
    def cache_dir(self) -> Path:
        return self.home.resolve() / "cache"

    @property
    def catalogue_dir(self) -> Path:
        """The task catalogue: ``MEDARENA_TASKS_DIR``, else ``./tasks``, else the checkout's."""
        return _data_folder(self.tasks_dir, "tasks")

    @property
    def baselines_dir(self) -> Path:
        """Baseline submissions: ``MEDARENA_SUBMISSIONS_DIR``, else ``./submissions``, else the
        checkout's."""
        return _data_folder(self.submissions_dir, "submissions")


def load_settings() -> Settings:
    """The settings from the environment; a bad value is a :class:`UserError` naming the
    variable, not a validation traceback."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else ""
            field = Settings.model_fields.get(name)
            alias = field.validation_alias if field is not None else None
            variables = alias.choices if isinstance(alias, AliasChoices) else [f"MEDARENA_{name}"]
            shown = " or ".join(str(v).upper() for v in variables)
            problems.append(f"{shown}: {error['msg'].removeprefix('Value error, ')}")
        raise UserError("bad setting in the environment: " + "; ".join(problems)) from None


def _data_folder(configured: Path | None, name: str) -> Path:
    if configured is not None:
        return configured.resolve()
    here = Path(name)
    if here.is_dir():
        return here.resolve()
    return Path(__file__).resolve().parents[2] / name


def secure_home(home: Path) -> None:
    """Make an existing state folder the owner's only (0700): it holds the test labels (task
    cache), submitted code and the databases. A missing one is left to be created, under
    :data:`OWNER_ONLY_UMASK`, by the first thing written into it."""
    try:
        if home.is_dir() and stat.S_IMODE(home.stat().st_mode) != 0o700:
            home.chmod(0o700)
    except PermissionError as exc:
        raise UserError(
            f"cannot make MEDARENA_HOME {home} owner-only (mode 0700): {exc.strerror}; it "
            "belongs to another user. Set MEDARENA_HOME to a folder of your own"
        ) from exc
