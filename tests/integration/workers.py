"""Finding this test session's Ray trial workers in /proc (Linux), to kill them from outside.

Only workers that descend from this process count (the session's local Ray is its child): other
test sessions on the same machine run trial workers of their own, which must be left alone.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def _parent(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text(encoding="utf-8").splitlines():
        if line.startswith("PPid:"):
            return int(line.split()[1])
    return 0


def _descends_from_us(pid: int) -> bool:
    me = os.getpid()
    with contextlib.suppress(OSError, ValueError):
        while pid > 1:
            pid = _parent(pid)
            if pid == me:
                return True
    return False


def busy_trial_workers() -> list[int]:
    """Pids of this session's Ray trial workers running a job (Ray titles them after the
    running method)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "cmdline").read_bytes().startswith(b"ray::_TrialWorker.run"):
                    pids.append(int(entry.name))
    return [pid for pid in pids if _descends_from_us(pid)]
