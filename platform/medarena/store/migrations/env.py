"""Alembic's entry point: runs migrations on the engine handed over by ``migrate.upgrade``."""

from __future__ import annotations

from alembic import context

from medarena.store.models import Base

engine = context.config.attributes["engine"]
with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=True,  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
