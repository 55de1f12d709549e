"""One sandbox process: bubblewrap around the guest zygote, limits set and outcomes measured
from outside, and the narrow channel to it.

Why bubblewrap: it is the sandbox under Flatpak, small, audited and packaged everywhere; it makes
the user, PID, mount, IPC, UTS, cgroup and network namespaces from a command line, so the
platform writes no namespace code of its own. The box sees: the Python runtime read-only (the
interpreter's prefix, the virtual environment, ``/usr``), its submission's code read-only at
``/code``, the inputs it may see read-only at ``/data``, one private writable ``/scratch`` and an
in-memory ``/tmp``; a fresh ``/proc`` that shows only its own processes; no network at all (its
own loopback only); an environment built from nothing. Limits: address space, file size, open
files and core dumps by rlimit (``prlimit``), processes and resident memory by a cgroup where
the machine allows one, wall-clock deadlines per phase by the supervisor reading the channel,
output by counting bytes. ``--die-with-parent`` and a new session: when the supervisor dies or
kills it, the whole process tree goes.

Where bubblewrap cannot run, the platform refuses untrusted code unless the operator allowed
unsandboxed runs (``MEDARENA_ALLOW_UNSANDBOXED``); the guest then runs as a plain child process
with the same channel, limits and clean environment, and its results are marked unsandboxed.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import logging
import os
import select
import shutil
import signal
import site
import stat
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medarena.exceptions import PlatformError
from medarena.sandbox import cgroups
from medarena.sandbox.failures import Failure, SandboxFailure
from medarena.sandbox.limits import SandboxLimits

log = logging.getLogger(__name__)

GUEST = Path(__file__).with_name("guest.py")
MAX_MESSAGE_BYTES = 64 * 1024
"""A line on the channel longer than this is a protocol violation."""
OUTPUT_TAIL_BYTES = 16 * 1024
"""How much of the sandbox's stdout/stderr is kept to show with an error."""
SANDBOX_UID = 65534
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


@dataclass(frozen=True)
class SandboxSupport:
    """Whether bubblewrap works on this machine, and why not."""

    available: bool
    reason: str = ""


@functools.cache
def sandbox_support() -> SandboxSupport:
    """Probe once per process: can bubblewrap start a box with every namespace here?"""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return SandboxSupport(False, "bubblewrap (bwrap) is not installed")
    probe = [bwrap, *_namespace_args(), *_runtime_args(), "--", "/bin/true"]
    try:
        result = subprocess.run(probe, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return SandboxSupport(False, f"bubblewrap failed to start: {exc}")
    if result.returncode != 0:
        return SandboxSupport(False, f"bubblewrap cannot make namespaces: {result.stderr.strip()}")
    return SandboxSupport(True)


def _namespace_args() -> list[str]:
    uid = str(SANDBOX_UID)
    return [
        "--unshare-all",
        "--unshare-user",
        "--uid", uid,
        "--gid", uid,
        "--disable-userns",
        "--die-with-parent",
        "--new-session",
        "--cap-drop", "ALL",
        "--hostname", "sandbox",
        "--clearenv",
    ]  # fmt: skip


def _runtime_paths() -> list[Path]:
    """The folders the interpreter and its packages live in (read-only in the box)."""
    paths = {Path(sys.base_prefix), Path(sys.prefix), Path("/usr")}
    paths.update(Path(p) for p in site.getsitepackages())
    resolved = sorted({p.resolve() for p in paths if p.exists()} | {p for p in paths if p.exists()})
    kept: list[Path] = []
    for path in resolved:  # drop paths inside another kept path
        if not any(path != other and path.is_relative_to(other) for other in resolved):
            kept.append(path)
    return kept


def _runtime_args() -> list[str]:
    args: list[str] = []
    for path in _runtime_paths():
        args += ["--ro-bind", str(path), str(path)]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        top = Path("/") / name
        if top.is_symlink():
            args += ["--symlink", str(top.readlink()), str(top)]
        elif top.is_dir():
            args += ["--ro-bind", str(top), str(top)]
    for name in ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "fonts"):
        etc = Path("/etc") / name
        if etc.exists():
            args += ["--ro-bind", str(etc), str(etc)]
    # The platform's own packages stay invisible even where they are installed beside torch.
    for package in ("medarena", "medarena_leaderboard"):
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.origin is not None:
            folder = Path(spec.origin).parent
            if any(folder.is_relative_to(p) for p in _runtime_paths()):
                args += ["--tmpfs", str(folder)]
    return args


def check_runtime_paths(forbidden: list[Path]) -> None:
    """Refuse to start if the runtime would expose one of ``forbidden`` (the home, the data)."""
    for path in _runtime_paths():
        for secret in forbidden:
            secret = secret.resolve()
            if secret.is_relative_to(path) and path != Path("/usr"):
                raise PlatformError(
                    f"the sandbox would see {secret} inside the runtime folder {path}; keep "
                    "MEDARENA_HOME and task data outside the Python installation"
                )


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
        for folder in (self.scratch, self.out, self.code_dir, self.data_dir):
            folder.mkdir(mode=0o700)
        self.loaded = False
        self.busy = False
        """A job's process runs in the box (set by :meth:`start_job`, cleared by its exit)."""
        self.cgroup = cgroups.create(
            processes=limits.processes, memory_bytes=limits.memory_mb * 2**20
        )
        read_fd, write_fd = os.pipe()
        command = self._command(write_fd, threads=threads, gpu=gpu)
        env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "CGROUP_PROCS": " ".join(
                str(p) for p in (self.cgroup.procs_files if self.cgroup else [])
            ),
        }
        if not sandboxed:
            env.update(self._guest_env(threads=threads, gpu=gpu, home=self.scratch))
        self._output_tail = bytearray()
        self._output_bytes = 0
        self._output_lock = threading.Lock()
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
        self._reply = read_fd
        self._pending = b""
        self._reader = threading.Thread(target=self._drain_output, daemon=True)
        self._reader.start()

    # Starting

    @staticmethod
    def _guest_env(*, threads: int, gpu: bool, home: Path) -> dict[str, str]:
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(home),
            "TMPDIR": "/tmp",
            "LANG": "C.UTF-8",
            "PYTHONHASHSEED": "0",
            "OMP_NUM_THREADS": str(threads),
            "MKL_NUM_THREADS": str(threads),
            "MPLCONFIGDIR": "/tmp",
        }
        if gpu and "CUDA_VISIBLE_DEVICES" in os.environ:
            env["CUDA_VISIBLE_DEVICES"] = os.environ["CUDA_VISIBLE_DEVICES"]
        return env

    def _limit_args(self) -> list[str]:
        limits = self.limits
        return [
            "nice",
            f"-n{self.nice}",
            "prlimit",
            f"--as={limits.memory_mb * 2**20}",
            f"--fsize={limits.file_size_mb * 2**20}",
            f"--nofile={limits.open_files}",
            "--core=0",
            "--",
        ]

    def _command(self, reply_fd: int, *, threads: int, gpu: bool) -> list[str]:
        # Join the cgroup before anything else runs, then set the rlimits, then the box.
        join = 'for p in $CGROUP_PROCS; do echo $$ > "$p" || exit 111; done; exec "$@"'
        prefix = ["/bin/sh", "-c", join, "sh", *self._limit_args()]
        python = os.path.abspath(sys.executable)  # noqa: PTH100  (normalises "..", no links)
        if not self.sandboxed:
            guest = [python, "-I", "-B", str(GUEST), str(reply_fd)]
            return [*prefix, *guest, str(self.code_dir), str(self.data_dir), str(self.out)]
        bwrap = shutil.which("bwrap")
        if bwrap is None:
            raise PlatformError("bubblewrap (bwrap) is not installed")
        args = [bwrap, *_namespace_args(), *_runtime_args()]
        args += ["--proc", "/proc", "--dev", "/dev"]
        if gpu:
            for device in sorted(Path("/dev").glob("nvidia*")):
                args += ["--dev-bind", str(device), str(device)]
        args += ["--size", str(self.limits.tmp_mb * 2**20), "--tmpfs", "/tmp"]
        args += ["--ro-bind", str(GUEST), "/guest/guest.py"]
        args += ["--ro-bind", str(self.code_dir), "/code", "--ro-bind", str(self.data_dir), "/data"]
        args += ["--bind", str(self.scratch), "/scratch", "--chdir", "/scratch"]
        for key, value in self._guest_env(threads=threads, gpu=gpu, home=Path("/scratch")).items():
            args += ["--setenv", key, value]
        return [*prefix, *args, "--", python, "-I", "-B", "/guest/guest.py", str(reply_fd)]

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

    def _drain_output(self) -> None:
        """Read the box's stdout/stderr as it comes, keeping a tail and counting bytes."""
        stream = self.process.stdout
        assert stream is not None
        while chunk := stream.read1(65536):  # type: ignore[attr-defined]
            with self._output_lock:
                self._output_bytes += len(chunk)
                self._output_tail += chunk
                del self._output_tail[:-OUTPUT_TAIL_BYTES]

    def reset_output(self, *, clear: bool = False) -> None:
        """Start counting output afresh (each phase has its own allowance); ``clear`` also
        forgets the output kept so far (a new job starts)."""
        with self._output_lock:
            self._output_bytes = 0
            if clear:
                self._output_tail.clear()

    def start_job(self, **job: Any) -> None:
        """Send a job to the zygote, which forks a process for it."""
        self.reset_output(clear=True)
        self.busy = True
        self.send(**job)

    @property
    def output_tail(self) -> str:
        with self._output_lock:
            return self._output_tail.decode("utf-8", "replace")

    def send(self, **message: Any) -> None:
        stdin = self.process.stdin
        assert stdin is not None
        try:
            stdin.write((json.dumps(message) + "\n").encode())
            stdin.flush()
        except OSError:  # the box is gone; the next receive says why
            pass

    def receive(self, *, phase: str, timeout: float) -> dict[str, Any]:
        """The next message from the box, checked to be a small JSON object.

        Raises :class:`SandboxFailure` when the deadline passes, the output allowance is spent,
        the box dies or sends something that is not a message (the box is killed then).
        """
        deadline = time.monotonic() + timeout
        while b"\n" not in self._pending:
            if len(self._pending) > MAX_MESSAGE_BYTES:
                raise self.fail(Failure.PROTOCOL, phase, "a message longer than 64 KiB")
            self._check_output(phase)
            left = deadline - time.monotonic()
            if left <= 0:
                raise self.fail(Failure.TIME_LIMIT, phase, f"the limit is {timeout:g} s")
            ready, _, _ = select.select([self._reply], [], [], min(left, 0.2))
            if not ready:
                continue
            chunk = os.read(self._reply, 65536)
            if not chunk:
                raise self.fail(Failure.EXITED, phase, self._death())
            self._pending += chunk
        self._check_output(phase)  # also when the message came at once: output precedes it
        line, _, self._pending = self._pending.partition(b"\n")
        try:
            message = json.loads(line)
        except (ValueError, RecursionError):
            raise self.fail(Failure.PROTOCOL, phase, "a message that is not JSON") from None
        if not isinstance(message, dict) or not isinstance(message.get("event"), str):
            raise self.fail(Failure.PROTOCOL, phase, "a message without an event")
        if message["event"] == "exit":
            self.busy = False
        return message

    def _check_output(self, phase: str) -> None:
        with self._output_lock:
            spent = self._output_bytes
        if spent > self.limits.output_kb * 1024:
            raise self.fail(
                Failure.TOO_MUCH_OUTPUT,
                phase,
                f"{spent / 1024:.0f} KiB printed; the limit is {self.limits.output_kb} KiB "
                "per phase",
            )

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

    def scratch_bytes(self) -> int:
        """Bytes in the regular files under the scratch folder, links not followed. The sandbox
        may be changing the folder meanwhile: what vanishes while it is walked is skipped."""
        total = 0
        for top, _, files in os.walk(self.scratch):  # errors (a folder gone) are skipped
            for name in files:
                with contextlib.suppress(OSError):
                    info = (Path(top) / name).lstat()
                    total += info.st_size if stat.S_ISREG(info.st_mode) else 0
        return total

    def close(self) -> None:
        self.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        with contextlib.suppress(OSError):
            os.close(self._reply)
        self._reader.join(timeout=5)
        if self.cgroup is not None:
            self.cgroup.remove()
        shutil.rmtree(self._root, ignore_errors=True)

    def __enter__(self) -> Box:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
