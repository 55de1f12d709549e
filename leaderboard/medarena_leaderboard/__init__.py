"""The web leaderboard and REST API of MedArena: a FastAPI app that reads the store.

It never imports ray, torch or Lightning, so it starts in a second and can run on a small
machine next to the database. Build it with :func:`create_app`.
"""

from __future__ import annotations

from medarena_leaderboard.app import create_app

__all__ = ["create_app"]
