"""The queue worker that ``medarena serve`` runs beside the web app, in a child process: started
so that it dies with ``serve`` (``PR_SET_PDEATHSIG``), stopped by passing on the signal that
stopped ``serve``."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from medarena.cli.errors import log_file
from medarena.cli.render import console
from medarena.settings import Settings

WORKER_STOP_TIMEOUT_S = 60.0
"""How long ``serve`` waits for its queue worker to hand its submissions back before killing it."""

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` asking Linux to send the child SIGTERM when this process dies, even by
    SIGKILL (``prctl(PR_SET_PDEATHSIG)``); ``None`` elsewhere. Linux sends it when the *thread*
    that started the child ends: start the child from the main thread."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here, not in the forked child
    parent = os.getpid()

    def preexec() -> None:
        if prctl(PR_SET_PDEATHSIG, signal.SIGTERM) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent:  # the parent died before the request: nobody would ask
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


@contextmanager
def queue_worker(settings: Settings, stop_signal: Callable[[], int]) -> Iterator[None]:
    """Run ``medarena worker`` beside the web app, in a child process (the web app stays free of
    Ray and of the task data), with its output in ``$MEDARENA_HOME/logs/worker.log``. When the web
    app stops, pass on the signal that stopped it (``stop_signal()``: SIGINT or SIGTERM) and wait
    for the worker to hand its running submissions back; if this process is killed instead, the
    kernel sends the worker SIGTERM (Linux)."""
    import subprocess

    path = log_file(settings).with_name("worker.log")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as log:
        child = subprocess.Popen(
            [sys.executable, "-m", "medarena", "worker"],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C reaches it once, from here, not from the terminal
            preexec_fn=die_with_parent(),
        )
        console.print(f"queue worker: pid {child.pid}, log in {path}", highlight=False)
        try:
            yield
        finally:
            if child.poll() is None:
                child.send_signal(stop_signal())
                try:
                    child.wait(timeout=WORKER_STOP_TIMEOUT_S)
                except (subprocess.TimeoutExpired, KeyboardInterrupt):  # or stopped again
                    child.kill()
                    child.wait()
            console.print(f"queue worker stopped (exit code {child.returncode})", highlight=False)
