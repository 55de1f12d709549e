"""Private folders named after the process that owns them, and the reaping of those (and of
sandbox cgroups) left behind by owners that were SIGKILLed and could not clean up."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from medarena.sandbox import cgroups

BOX_PREFIX = "medarena-box-"
"""Private folders are named ``<prefix><pid of their owner>-<random>`` in the temp folder."""


def private_folder(prefix: str) -> Path:
    """A new ``0700`` folder in the temp folder named after this process (:func:`reap_stale`)."""
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-"))


def reap_stale(*prefixes: str) -> None:
    """Remove what sandboxes of dead processes left (their owner was SIGKILLed): private
    folders named with ``prefixes`` whose owner pid is gone, and empty sandbox cgroups."""
    for prefix in (BOX_PREFIX, *prefixes):
        for folder in Path(tempfile.gettempdir()).glob(f"{prefix}*"):
            pid = folder.name.removeprefix(prefix).partition("-")[0]
            if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                shutil.rmtree(folder, ignore_errors=True)
    cgroups.reap_stale()
