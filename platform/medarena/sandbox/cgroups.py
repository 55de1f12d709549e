"""A cgroup per sandbox, where the machine lets the platform make one: process, memory and CPU
caps.

rlimits cannot cap the processes of a sandbox whose user namespace maps to root outside (the
count is per real user), so the process limit needs the ``pids`` controller; the memory cgroup
caps resident memory, which the address-space rlimit alone does not; the ``cpu`` controller's
quota keeps a sandbox to the CPUs its trial was given (a submission that starts more threads or
processes would otherwise take its neighbours' CPUs and their time budgets). Both cgroup v1 (one
folder per controller) and v2 (one unified tree) are handled. Where none can be written (an
unprivileged container), :func:`create` returns ``None`` and the caller says so; where only the
CPU controller is missing, the sandbox runs without a CPU quota (logged).
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

ROOT = Path("/sys/fs/cgroup")
PREFIX = "medarena-sandbox-"
"""A sandbox's cgroup is named ``<prefix><pid of the supervisor>-<random>``."""


@dataclass(frozen=True)
class Cgroup:
    """The folders of one sandbox's cgroup (one per controller on v1, one on v2)."""

    pids: Path
    memory: Path | None
    v2: bool
    cpu: Path | None = None

    @property
    def folders(self) -> list[Path]:
        return sorted({self.pids, *(f for f in (self.memory, self.cpu) if f is not None)})

    @property
    def procs_files(self) -> list[Path]:
        """Write a pid into each of these to move that process in."""
        return [folder / "cgroup.procs" for folder in self.folders]

    def _read(self, path: Path) -> str:
        try:
            return path.read_text()
        except OSError:
            return ""

    def _events(self, path: Path) -> dict[str, int]:
        fields = {}
        for line in self._read(path).splitlines():
            key, _, value = line.partition(" ")
            if value.strip().isdigit():
                fields[key] = int(value)
        return fields

    def hit_process_limit(self) -> bool:
        return self._events(self.pids / "pids.events").get("max", 0) > 0

    def hit_memory_limit(self) -> bool:
        if self.memory is None:
            return False
        if self.v2:
            return self._events(self.memory / "memory.events").get("oom_kill", 0) > 0
        oom = self._events(self.memory / "memory.oom_control").get("oom_kill", 0)
        failed = self._read(self.memory / "memory.failcnt").strip()
        return oom > 0 or (failed.isdigit() and int(failed) > 0)

    def kill_all(self) -> None:
        """SIGKILL every process left in the cgroup (v2 has cgroup.kill; v1 lists them)."""
        for folder in self.folders:
            kill = folder / "cgroup.kill"
            if kill.exists():
                with contextlib.suppress(OSError):
                    kill.write_text("1")
                continue
            for pid in self._read(folder / "cgroup.procs").split():
                with contextlib.suppress(OSError):
                    os.kill(int(pid), 9)

    def remove(self) -> None:
        self.kill_all()
        for folder in self.folders:
            with contextlib.suppress(OSError):
                folder.rmdir()


def reap_stale() -> int:
    """Remove the cgroups of sandboxes whose supervisor died (killed, so it could not remove
    them); returns how many. Cgroups of live supervisors are left alone, even when empty."""
    removed = 0
    for parent in (ROOT / "medarena", ROOT / "pids", ROOT / "memory", ROOT / "cpu"):
        for folder in parent.glob(f"{PREFIX}*") if parent.is_dir() else ():
            owner = folder.name.removeprefix(PREFIX).partition("-")[0]
            if owner.isdigit() and Path(f"/proc/{owner}").exists():
                continue
            cgroup = Cgroup(pids=folder, memory=None, v2=parent.name == "medarena")
            cgroup.kill_all()
            with contextlib.suppress(OSError):
                folder.rmdir()
                removed += 1
    return removed


def _writable(path: Path) -> bool:
    return path.is_dir() and os.access(path, os.W_OK)


CPU_PERIOD_US = 100_000
"""The period of the CPU quota: a sandbox of ``cpus`` CPUs may run ``cpus`` periods per period."""


def _enable_cpu_v2(base: Path) -> bool:
    """Delegate the v2 ``cpu`` controller to ``base``'s children (it may be unavailable)."""
    for folder in (ROOT, base):
        control = folder / "cgroup.subtree_control"
        if "cpu" not in control.read_text().split():
            try:
                control.write_text("+cpu")
            except OSError as exc:
                log.warning("no cpu cgroup controller (%s): sandboxes run without a CPU quota", exc)
                return False
    return True


def _quota(cpus: float) -> int:
    return max(1000, round(cpus * CPU_PERIOD_US))


def create(*, processes: int, memory_bytes: int, cpus: float) -> Cgroup | None:
    """A new cgroup with these caps, or ``None`` where this machine allows none."""
    name = f"{PREFIX}{os.getpid()}-{uuid.uuid4().hex[:12]}"
    try:
        if (ROOT / "cgroup.controllers").exists():  # v2
            base = ROOT / "medarena"
            if not base.exists():
                base.mkdir()
                (ROOT / "cgroup.subtree_control").write_text("+pids +memory")
                (base / "cgroup.subtree_control").write_text("+pids +memory")
            has_cpu = _enable_cpu_v2(base)
            folder = base / name
            folder.mkdir()
            (folder / "pids.max").write_text(str(processes))
            (folder / "memory.max").write_text(str(memory_bytes))
            (folder / "memory.swap.max").write_text("0")
            if has_cpu:
                (folder / "cpu.max").write_text(f"{_quota(cpus)} {CPU_PERIOD_US}")
            return Cgroup(pids=folder, memory=folder, v2=True, cpu=folder if has_cpu else None)
        if not _writable(ROOT / "pids"):
            log.warning("no writable pids cgroup: sandboxes run without a process limit")
            return None
        pids = ROOT / "pids" / name
        pids.mkdir()
        (pids / "pids.max").write_text(str(processes))
        memory = None
        if _writable(ROOT / "memory"):
            memory = ROOT / "memory" / name
            memory.mkdir()
            (memory / "memory.limit_in_bytes").write_text(str(memory_bytes))
            swap = memory / "memory.memsw.limit_in_bytes"
            if swap.exists():
                with contextlib.suppress(OSError):
                    swap.write_text(str(memory_bytes))
        cpu = None
        if _writable(ROOT / "cpu"):
            cpu = ROOT / "cpu" / name
            cpu.mkdir()
            (cpu / "cpu.cfs_period_us").write_text(str(CPU_PERIOD_US))
            (cpu / "cpu.cfs_quota_us").write_text(str(_quota(cpus)))
        else:
            log.warning("no writable cpu cgroup: sandboxes run without a CPU quota")
        return Cgroup(pids=pids, memory=memory, v2=False, cpu=cpu)
    except OSError as exc:
        log.warning("cannot create a cgroup for a sandbox: %s", exc)
        return None
