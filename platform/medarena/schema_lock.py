"""One process at a time creates or migrates a database's tables.

The leaderboard (Alembic), the studies (Optuna) and an MLflow store in SQL each create their
tables when first opened, and none of them survives two processes doing it at the same instant
(``medarena serve`` and ``medarena worker`` started together on a new database, or two
``medarena submit`` on a new home): the slower one fails with "table already exists".
:func:`schema_lock` serialises that step: a PostgreSQL advisory lock (across hosts) or a lock
file next to an SQLite database. The second process then finds the tables and has nothing to do.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from filelock import FileLock
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import NullPool

ADVISORY_LOCK_KEY = 0x6D6564617265  # "medare"
"""The PostgreSQL advisory lock held while tables are created or migrated."""


@contextmanager
def schema_lock(url: str | URL) -> Iterator[None]:
    """Hold ``url``'s schema lock; a no-op for in-memory databases and non-SQL stores."""
    try:
        parsed = make_url(url)
    except ArgumentError:  # not an SQLAlchemy URL (an MLflow folder or HTTP server)
        yield
        return
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        engine = create_engine(parsed, poolclass=NullPool)
        key = {"key": ADVISORY_LOCK_KEY}
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT pg_advisory_lock(:key)"), key)
                try:
                    yield
                finally:
                    connection.execute(text("SELECT pg_advisory_unlock(:key)"), key)
                    connection.commit()
        finally:
            engine.dispose()
    elif backend == "sqlite" and parsed.database not in (None, "", ":memory:"):
        with FileLock(f"{parsed.database}.lock"):
            yield
    else:
        yield
