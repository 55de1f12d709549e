"""The command line that starts a box: the cgroup joined first, then rlimits, then bubblewrap
with its namespaces and mounts, then the guest in an environment built from nothing.

Why bubblewrap: it is the sandbox under Flatpak, small, audited and packaged everywhere; it makes
the user, PID, mount, IPC, UTS, cgroup and network namespaces from a command line, so the
platform writes no namespace code of its own. The box sees: the Python runtime read-only (the
interpreter's prefix, the virtual environment, ``/usr``), its submission's code read-only at
``/code``, the inputs it may see read-only at ``/data``, one private writable ``/scratch`` and an
in-memory ``/tmp``; a fresh ``/proc`` that shows only its own processes; no network at all (its
own loopback only); an environment built from nothing. Address space, file size, open files and
core dumps are capped by rlimit (``prlimit``); a seccomp filter refuses the kernel interfaces a
model never needs (:mod:`medarena.sandbox.seccomp`); ``--die-with-parent`` and a new session
make the whole process tree go when the supervisor dies or kills it.

Where bubblewrap cannot run (:func:`sandbox_support`), the unsandboxed command runs the guest as
a plain child process behind the same cgroup, rlimits and clean environment.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shlex
import shutil
import site
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from medarena.exceptions import PlatformError
from medarena.sandbox.cgroups import Cgroup
from medarena.sandbox.limits import SandboxLimits

GUEST = Path(__file__).with_name("guest.py")
SECCOMP_FD = 9
"""The descriptor the launcher opens the seccomp filter on, for bubblewrap's ``--seccomp``."""
SANDBOX_UID = 65534


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


USER_FILES = {
    "passwd": f"nobody:x:{SANDBOX_UID}:{SANDBOX_UID}:nobody:/scratch:/usr/sbin/nologin\n",
    "group": f"nogroup:x:{SANDBOX_UID}:\n",
}
"""The box's only user and group: libraries that look the user up (``getpass.getuser``,
``pwd.getpwuid``; MONAI and torch do at import) find the sandbox user instead of failing."""


def write_user_files(folder: Path) -> None:
    """Write :data:`USER_FILES` into ``folder``, to be bound read-only into the box's ``/etc``."""
    for name, text in USER_FILES.items():
        (folder / name).write_text(text, encoding="utf-8")


def _guest_env(*, threads: int, gpu: bool, home: Path) -> dict[str, str]:
    """The guest's whole environment (``--clearenv`` drops everything else)."""
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


def launcher_env(
    cgroup: Cgroup | None, *, sandboxed: bool, threads: int, gpu: bool, home: Path
) -> dict[str, str]:
    """The environment of the launcher (:func:`box_command`): the cgroup files it joins, and
    the guest's environment where no bubblewrap sets it."""
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "CGROUP_PROCS": " ".join(str(p) for p in (cgroup.procs_files if cgroup else [])),
    }
    if not sandboxed:
        env.update(_guest_env(threads=threads, gpu=gpu, home=home))
    return env


def _limit_args(limits: SandboxLimits, *, nice: int) -> list[str]:
    return [
        "nice",
        f"-n{nice}",
        "prlimit",
        f"--as={limits.memory_mb * 2**20}",
        f"--fsize={limits.file_size_mb * 2**20}",
        f"--nofile={limits.open_files}",
        "--core=0",
        "--",
    ]


def box_command(
    reply_fd: int,
    *,
    limits: SandboxLimits,
    sandboxed: bool,
    nice: int,
    threads: int,
    gpu: bool,
    code: Path,
    data: Path,
    etc: Path,
    scratch: Path,
    out: Path,
    seccomp: Path | None = None,
) -> list[str]:
    """The command that starts the guest zygote, which writes its messages to ``reply_fd``;
    the host folders ``code`` and ``data`` appear read-only at ``/code`` and ``/data``,
    ``scratch`` (which holds ``out``) writable at ``/scratch``; the guest runs under the
    compiled seccomp filter in the file ``seccomp`` (see :mod:`medarena.sandbox.seccomp`)."""
    # Join the cgroup before anything else runs, then set the rlimits, then the box. The
    # filter reaches bubblewrap as an open file descriptor, which it reads and closes.
    join = 'for p in $CGROUP_PROCS; do echo $$ > "$p" || exit 111; done; exec "$@"'
    if sandboxed and seccomp is not None:
        join += f" {SECCOMP_FD}<{shlex.quote(str(seccomp))}"
    prefix = ["/bin/sh", "-c", join, "sh", *_limit_args(limits, nice=nice)]
    python = os.path.abspath(sys.executable)  # noqa: PTH100  (normalises "..", no links)
    if not sandboxed:
        guest = [python, "-I", "-B", str(GUEST), str(reply_fd)]
        return [*prefix, *guest, str(code), str(data), str(out)]
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise PlatformError("bubblewrap (bwrap) is not installed")
    # The private /tmp first: a runtime installed under the host's /tmp (a virtual environment
    # in a CI checkout there) is then bound on top of it instead of hidden by it.
    args = [bwrap, *_namespace_args(), "--size", str(limits.tmp_mb * 2**20), "--tmpfs", "/tmp"]
    if seccomp is not None:
        args += ["--seccomp", str(SECCOMP_FD)]
    args += _runtime_args()
    # /dev is a tmpfs that bubblewrap leaves writable, /dev/shm a folder in it, both as large as
    # half the machine's memory: /dev/shm gets a sized tmpfs of its own (shared memory, used by
    # multiprocessing and DataLoader workers), and /dev is then made read-only.
    args += ["--proc", "/proc", "--dev", "/dev"]
    args += ["--size", str(limits.tmp_mb * 2**20), "--tmpfs", "/dev/shm"]
    if gpu:
        for device in sorted(Path("/dev").glob("nvidia*")):
            args += ["--dev-bind", str(device), str(device)]
    args += ["--remount-ro", "/dev"]
    args += ["--ro-bind", str(GUEST), "/guest/guest.py"]
    for name in USER_FILES:
        args += ["--ro-bind", str(etc / name), f"/etc/{name}"]
    args += ["--ro-bind", str(code), "/code", "--ro-bind", str(data), "/data"]
    args += ["--bind", str(scratch), "/scratch", "--chdir", "/scratch"]
    for key, value in _guest_env(threads=threads, gpu=gpu, home=Path("/scratch")).items():
        args += ["--setenv", key, value]
    return [*prefix, *args, "--", python, "-I", "-B", "/guest/guest.py", str(reply_fd)]
