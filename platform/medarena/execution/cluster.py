"""Connecting to a Ray cluster, or starting a local one on free ports.

A local Ray is started by the driver and must not outlive it. Stopped by SIGINT or SIGTERM, the
driver's own shutdown stops it. Killed (SIGKILL, the OOM killer), its gcs_server and raylet die
with it and its trial workers a few seconds later, but the dashboard and runtime-env agents,
orphaned, stay about a minute (each waits 60 s to report the raylet's death to the dead GCS).
So on Linux a *reaper* starts just before a local Ray: a small process, in its own session, that
keeps track of the processes Ray starts (the driver's new children while ``ray.init`` runs, and
their descendants, polled from /proc), waits for the driver's end (the end of a pipe that only
the driver holds, closed by the kernel however the driver ends, or by :func:`shutdown`), and
then stops what is left of them: SIGTERM, and SIGKILL a second later. Children the driver starts
from another thread while ``ray.init`` runs would be adopted too.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import ray

from medarena.exceptions import PlatformError

log = logging.getLogger(__name__)

# Run as `python -I -S -c REAPER DRIVER_PID EARLIER_CHILD_PID...`, with the read end of the
# driver's pipe as stdin. Until it reads a line, it adopts the driver's new children (those Ray
# starts in ray.init), polling every 0.1 s; then it follows only their descendants, every 0.5 s.
REAPER = r"""# medarena: stops what is left of a local Ray once its driver has ended
import os, select, signal, sys, time
driver, earlier = int(sys.argv[1]), {int(pid) for pid in sys.argv[2:]} | {os.getpid()}

def table():
    procs = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != b"Z":
                procs[int(name)] = (int(fields[1]), fields[19])  # parent, start time
    return procs

def tree(known, procs):
    alive = {pid: start for pid, start in known.items() if procs.get(pid, (0, b""))[1] == start}
    while more := {p: s for p, (parent, s) in procs.items() if parent in alive and p not in alive}:
        alive.update(more)
    return alive

known, adopting = {}, True
while True:
    procs = table()
    if adopting:
        known.update({p: s for p, (parent, s) in procs.items()
                      if parent == driver and p not in earlier})
    known = tree(known, procs)
    if select.select([0], [], [], 0.1 if adopting else 0.5)[0]:
        if not os.read(0, 512):
            break  # the driver has ended, or shut its local Ray down
        adopting = False
for sig, grace in ((signal.SIGTERM, 1.0), (signal.SIGKILL, 2.0)):
    known = tree(known, table())
    for pid in known:
        try:
            os.kill(pid, sig)
        except OSError:
            pass
    deadline = time.monotonic() + grace
    while known and time.monotonic() < deadline:
        time.sleep(0.05)
        known = tree(known, table())
    if not known:
        break
"""


@dataclass(frozen=True)
class ClusterInfo:
    """The cluster the driver is attached to."""

    address: str
    cpus: float
    gpus: float


@dataclass
class _Reaper:
    process: subprocess.Popen[bytes]
    pipe: int  # the write end: open while the driver lives


_reaper: _Reaper | None = None


def connect(address: str | None = None, *, num_cpus: int | None = None) -> ClusterInfo:
    """Attach to the Ray cluster at ``address``, or start a local one when it is ``None``.

    A local cluster lets Ray choose free ports (its usual head port, 6379, is often Redis's) and
    ends with this process, however it ends (on Linux; see the module's documentation).
    Calling it again while connected returns the same cluster.
    """
    if not ray.is_initialized():
        if address is None and sys.platform.startswith("linux"):
            _start_reaper()
        try:
            ray.init(
                address=address,
                num_cpus=num_cpus if address is None else None,
                include_dashboard=False,
                logging_level=logging.WARNING,
                log_to_driver=False,
                configure_logging=True,
            )
        except (ConnectionError, RuntimeError, ValueError) as exc:
            _stop_reaper()
            raise PlatformError(
                f"could not connect to the Ray cluster at {address!r}: {exc}"
            ) from exc
        if _reaper is not None:
            os.write(_reaper.pipe, b"started\n")  # Ray's processes are all adopted
    resources = ray.cluster_resources()
    return ClusterInfo(
        address=ray.get_runtime_context().gcs_address,
        cpus=float(resources.get("CPU", 0.0)),
        gpus=float(resources.get("GPU", 0.0)),
    )


def shutdown() -> None:
    """Disconnect from the cluster (and stop it if it was started here)."""
    if ray.is_initialized():
        ray.shutdown()
    _stop_reaper()


def _children() -> set[int]:
    """The pids of this process's children."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_bytes().rsplit(b")", 1)[1].split()[1])
        except OSError:
            continue
        if parent == os.getpid():
            found.add(int(entry.name))
    return found


def _start_reaper() -> None:
    """Start the reaper of the local Ray about to start (see the module's documentation)."""
    global _reaper
    _stop_reaper()
    earlier = sorted(_children())
    read_end, write_end = os.pipe()  # close-on-exec: no program started later holds them
    try:
        process = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", REAPER, str(os.getpid()), *map(str, earlier)],
            stdin=read_end,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C at the terminal must not stop it before the driver
        )
    except BaseException:
        os.close(write_end)
        raise
    finally:
        os.close(read_end)
    _reaper = _Reaper(process, write_end)


def _stop_reaper(timeout_s: float = 10.0) -> None:
    """Tell the reaper that the local Ray was shut down; it stops what is left of it (nothing,
    normally) and exits, and is waited for."""
    global _reaper
    if _reaper is None:
        return
    reaper, _reaper = _reaper, None
    os.close(reaper.pipe)
    try:
        reaper.process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        log.warning("the reaper of the local Ray (pid %d) has not ended", reaper.process.pid)
