"""One sandbox process: the guest zygote in its box, limits set and outcomes measured from
outside, and the narrow channel to it.

The box is started by the command of :mod:`medarena.sandbox.bubblewrap` (namespaces, mounts,
rlimits, a clean environment) inside a cgroup of its own where the machine allows one
(:mod:`medarena.sandbox.cgroups`: processes, resident memory, CPU time); the supervisor talks to
it through a :class:`~medarena.sandbox.channel.Channel`, keeps a wall-clock deadline per phase on
each message and counts its output. What ends a box is named from what the outside saw: exit
status and signal, the cgroup's counters, the deadlines.

Where bubblewrap cannot run, the platform refuses untrusted code unless the operator allowed
unsandboxed runs (``MEDARENA_ALLOW_UNSANDBOXED``); the guest then runs as a plain child process
with the same channel, limits and clean environment, and its results are marked unsandboxed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

from medarena.exceptions import PlatformError
from medarena.sandbox import cgroups
from medarena.sandbox.bubblewrap import box_command, launcher_env, write_user_files
from medarena.sandbox.channel import Channel, ChannelError
from medarena.sandbox.failures import Failure, SandboxFailure
from medarena.sandbox.limits import SandboxLimits
from medarena.sandbox.reaping import BOX_PREFIX, private_folder, reap_stale
from medarena.sandbox.seccomp import compiled_filter

SCRATCH_CHECK_S = 0.5
"""How often the scratch folder is measured while the box works."""

__all__ = ["Box", "private_folder", "reap_stale"]  # the supervisor takes the last two from here

log = logging.getLogger(__name__)


class Box:
    """A running sandbox: the guest zygote, its channel and its limits.

    It starts empty; :meth:`load` then puts one submission's code at ``/code`` and the inputs it
    may see at ``/data`` (both read-only inside). Not thread safe; call :meth:`close` (or use it
    as a context manager), which kills the whole tree and removes its folders.
    """

    def __init__(
        self,
        *,
        limits: SandboxLimits,
        sandboxed: bool = True,
        threads: int = 1,
        gpu: bool = False,
        nice: int = 0,
    ) -> None:
        self.limits, self.sandboxed, self.nice = limits, sandboxed, nice
        self._root = private_folder(BOX_PREFIX)
        self.scratch = self._root / "scratch"
        self.out = self.scratch / "out"
        self.code_dir = self._root / "code"
        self.data_dir = self._root / "data"
        self.etc_dir = self._root / "etc"
        for folder in (self.scratch, self.out, self.code_dir, self.data_dir, self.etc_dir):
            folder.mkdir(mode=0o700)
        write_user_files(self.etc_dir)
        self.loaded = False
        self.busy = False
        """A job's process runs in the box (set by :meth:`start_job`, cleared by its exit)."""
        self.cgroup = cgroups.create(
            processes=limits.processes, memory_bytes=limits.memory_mb * 2**20, cpus=threads
        )
        seccomp = None
        if sandboxed and (program := compiled_filter()) is not None:
            seccomp = self._root / "seccomp.bpf"
            seccomp.write_bytes(program)
        read_fd, write_fd = os.pipe()
        command = box_command(
            write_fd,
            limits=limits,
            sandboxed=sandboxed,
            nice=nice,
            threads=threads,
            gpu=gpu,
            code=self.code_dir,
            data=self.data_dir,
            etc=self.etc_dir,
            scratch=self.scratch,
            out=self.out,
            seccomp=seccomp,
        )
        env = launcher_env(
            self.cgroup, sandboxed=sandboxed, threads=threads, gpu=gpu, home=self.scratch
        )
        try:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                pass_fds=(write_fd,),
                env=env,
                cwd=self.scratch,
                start_new_session=True,
            )
        finally:
            os.close(write_fd)
        self._scratch_checked = 0.0
        self.channel = Channel(
            self.process, read_fd, output_kb=limits.output_kb, guard=self._scratch_guard
        )

    # Starting

    def load(self, *, code: dict[str, bytes], data: dict[str, Path]) -> None:
        """Give the box its one submission's code and the input files it may see (once).

        A box starts empty, so that one can be started ahead (importing torch) and given a
        submission when one comes; the files appear read-only inside.
        """
        if self.loaded:
            raise PlatformError("a sandbox is loaded once: start a new one for other code")
        self.loaded = True
        for name, content in code.items():
            if Path(name).is_absolute() or ".." in Path(name).parts:
                raise PlatformError(f"refusing to write submitted file {name!r} outside /code")
            target = self.code_dir / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        for name, source in data.items():
            try:
                os.link(source, self.data_dir / name)
            except OSError:  # another filesystem
                shutil.copyfile(source, self.data_dir / name)

    # The channel

    def reset_output(self, *, clear: bool = False) -> None:
        """Start counting output afresh (each phase has its own allowance); ``clear`` also
        forgets the output kept so far (a new job starts)."""
        self.channel.reset_output(clear=clear)

    def start_job(self, **job: Any) -> None:
        """Send a job to the zygote, which forks a process for it."""
        self.reset_output(clear=True)
        self.busy = True
        self.send(**job)

    @property
    def output_tail(self) -> str:
        return self.channel.output_tail

    def send(self, **message: Any) -> None:
        self.channel.send(**message)

    def receive(self, *, phase: str, timeout: float) -> dict[str, Any]:
        """The next message from the box, checked to be a small JSON object.

        Raises :class:`SandboxFailure` when the deadline passes, the output allowance is spent,
        the box dies or sends something that is not a message (the box is killed then).
        """
        try:
            message = self.channel.receive(timeout=timeout)
        except ChannelError as broken:
            detail = self._death() if broken.kind is Failure.EXITED else broken.detail
            raise self.fail(broken.kind, phase, detail) from None
        if message["event"] == "exit":
            self.busy = False
        return message

    # Ending

    def _death(self) -> str:
        """What the outside saw of the box's end (the box is killed if still running)."""
        self.kill()
        code = self.process.wait()
        if self.cgroup is not None and self.cgroup.hit_memory_limit():
            return "killed at the memory limit"
        if code < 0:
            return f"killed by signal {signal.Signals(-code).name}"
        return f"the sandbox exited with status {code}"

    def cause(self, default: Failure) -> Failure:
        """Which limit, if any, explains a failure the box reported as an exception."""
        if self.cgroup is not None:
            if self.cgroup.hit_process_limit():
                return Failure.PROCESS_LIMIT
            if self.cgroup.hit_memory_limit():
                return Failure.MEMORY_LIMIT
        return default

    def fail(self, kind: Failure, phase: str, detail: str) -> SandboxFailure:
        """Kill the box and describe why, naming a limit the cgroup saw passed."""
        self.kill()
        if kind in (Failure.EXITED, Failure.PROTOCOL):
            kind = self.cause(kind)
        elif kind is Failure.TIME_LIMIT and self.cause(kind) is Failure.PROCESS_LIMIT:
            # A fork bomb whose processes retry forever never fails: it runs out of time.
            kind = Failure.PROCESS_LIMIT
            detail = (
                f"it reached its limit of {self.limits.processes} processes, then ran past the "
                f"time limit ({detail})"
            )
        return SandboxFailure(kind, phase, detail)

    def kill(self) -> None:
        """Kill the box and everything in it (idempotent)."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        if self.cgroup is not None:
            self.cgroup.kill_all()

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def _processes(self) -> list[int]:
        """Host pids of the box's processes: its launcher and every descendant."""
        children: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError, ValueError, IndexError):
                    ppid = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
                    children.setdefault(ppid, []).append(int(entry.name))
        tree, todo = [], [self.process.pid]
        while todo:
            pid = todo.pop()
            tree.append(pid)
            todo += children.get(pid, [])
        return tree

    def renice(self, nice: int) -> None:
        """Change the CPU priority of every process in the box (a spare box starts at low
        priority, so that importing torch ahead takes only idle CPU from running trials)."""
        if nice == self.nice:
            return
        self.nice = nice
        for pid in self._processes():
            with contextlib.suppress(OSError):  # gone, or no right to raise priority
                os.setpriority(os.PRIO_PROCESS, pid, nice)

    def scratch_over(self) -> str | None:
        """What the scratch folder holds beyond the limits (``None`` if nothing): more bytes in
        regular files than ``scratch_mb``, or more entries than ``scratch_entries``. Links are
        not followed; the walk stops at the first limit passed, and skips what vanishes while
        it is walked (the sandbox may be changing the folder)."""
        max_bytes, max_entries = self.limits.scratch_mb * 2**20, self.limits.scratch_entries
        total = entries = 0
        for top, folders, files in os.walk(self.scratch):  # errors (a folder gone) are skipped
            entries += len(folders) + len(files)
            if entries > max_entries:
                return f"scratch holds more than {max_entries} files and folders"
            for name in files:
                with contextlib.suppress(OSError):
                    info = (Path(top) / name).lstat()
                    total += info.st_size if stat.S_ISREG(info.st_mode) else 0
            if total > max_bytes:
                return f"scratch over {self.limits.scratch_mb} MiB"
        return None

    def check_scratch(self, phase: str) -> None:
        """Raise :class:`SandboxFailure` (the box killed) if :meth:`scratch_over` says so."""
        if (over := self.scratch_over()) is not None:
            raise self.fail(Failure.FILE_LIMIT, phase, over)

    def _scratch_guard(self) -> ChannelError | None:
        """The scratch folder measured while a message is awaited, every
        :data:`SCRATCH_CHECK_S`: a box that fills the host's disk within one epoch is stopped
        then, not after the epoch (writes of one interval at most pass the limit)."""
        now = time.monotonic()
        if now - self._scratch_checked < SCRATCH_CHECK_S:
            return None
        self._scratch_checked = now
        over = self.scratch_over()
        return None if over is None else ChannelError(Failure.FILE_LIMIT, over)

    def close(self) -> None:
        self.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        self.channel.close()
        if self.cgroup is not None:
            self.cgroup.remove()
        shutil.rmtree(self._root, ignore_errors=True)

    def __enter__(self) -> Box:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
