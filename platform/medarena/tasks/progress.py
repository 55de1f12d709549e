"""Per-case progress of a dataset reader, reported to whoever is listening.

Readers wrap their loop over cases in :func:`track`; ``medarena tasks prepare`` listens with a
progress bar (:func:`listening`). Nobody listening costs nothing, so readers need no parameter
for it and the library stays free of terminal code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sized
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

T = TypeVar("T")
Listener = Callable[[int, int | None], None]
"""Called with (cases done, total cases or None) after every case."""

_listener: ContextVar[Listener | None] = ContextVar("medarena_reader_progress", default=None)


def track(cases: Iterable[T]) -> Iterator[T]:
    """Yield ``cases`` unchanged, telling the listener after each one."""
    listener = _listener.get()
    if listener is None:
        yield from cases
        return
    total = len(cases) if isinstance(cases, Sized) else None
    listener(0, total)
    for done, case in enumerate(cases, start=1):
        yield case
        listener(done, total)


@contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Send the progress of readers run inside the block to ``listener``."""
    token = _listener.set(listener)
    try:
        yield
    finally:
        _listener.reset(token)
