"""Alembic migrations of the leaderboard database (see :mod:`medarena.store.migrate`)."""
