"""The Arena and the Store a command opens, closed when the command ends, however it ends."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING

from medarena.settings import Settings

if TYPE_CHECKING:
    from medarena.arena import Arena
    from medarena.store import Store


@contextmanager
def open_arena(settings: Settings, *, stale_after_s: float | None = None) -> Iterator[Arena]:
    """The platform as ``settings`` configure it; closed on leaving (its worker pools and the
    local Ray it may have started are stopped)."""
    from medarena.arena import Arena, ArenaConfig

    config = ArenaConfig(
        catalogue_dir=settings.catalogue_dir,
        cache_dir=settings.cache_dir,
        db_url=settings.leaderboard_url,
        study_url=settings.optuna_url,
        tracking_uri=settings.tracking_uri,
        ray_address=settings.ray_address,
        artifacts_dir=settings.home.resolve() / "artifacts",
        allow_unsandboxed=settings.allow_unsandboxed,
    )
    if stale_after_s is not None:
        config = replace(config, stale_after_s=stale_after_s)
    arena = Arena(config)
    try:
        yield arena
    finally:
        arena.close()


@contextmanager
def open_store(settings: Settings) -> Iterator[Store]:
    """The leaderboard database; its connections are closed on leaving."""
    from medarena.store import Store

    store = Store(settings.leaderboard_url)
    try:
        yield store
    finally:
        store.engine.dispose()
