"""Schema migrations of the leaderboard database, with Alembic (shipped inside the package).

:func:`upgrade` brings any database to the newest schema when a :class:`Store` opens it, so a
platform upgraded in place keeps its leaderboards; one process at a time (see
:mod:`medarena.schema_lock`). A new column or table goes into a new file under
``migrations/versions/`` (``medarena-migrations revision -m "..."`` style: see
:func:`new_revision`); a test fails when the models and the migrations disagree.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

from medarena.schema_lock import schema_lock

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine) -> None:
    """Apply every migration the database has not seen yet."""
    with schema_lock(engine.url):
        command.upgrade(_config(engine), "head")


def new_revision(engine: Engine, message: str) -> None:
    """Write a migration from the difference between the models and ``engine``'s database
    (which must be at the newest revision); review it before committing."""
    command.revision(_config(engine), message=message, autogenerate=True)
