"""What a sandbox hands back, read and checked by the trusted supervisor.

Files: the sandbox writes its outputs into a folder it controls, so each is opened without
following links, relative to the folder's descriptor, and only as a small regular file
(:func:`read_logits`, :func:`read_weights`). Model outputs are ``.npy`` held to the task kind's
output contract (:class:`~medarena.tasks.kinds.OutputContract`: no pickle, floats, the kind's
shape, finite); weights must parse as ``safetensors``. Nothing is imported or unpickled.

Messages: what a guest's error or its process's exit means, as a
:class:`~medarena.sandbox.SandboxFailure` the participant reads (:func:`guest_failure`,
:func:`exit_failure`, :func:`with_output`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from medarena.sandbox import Box, Failure, SandboxFailure
from medarena.tasks.kinds import OutputContract, OutputContractError

GUEST_KINDS = frozenset(
    {Failure.NON_FINITE_LOSS, Failure.MEMORY_LIMIT, Failure.FILE_LIMIT, Failure.OUTPUT_CONTRACT}
)
"""What the guest may name an error in the participant's code: a loss it checked, a limit the
kernel enforced from inside the process (an allocation or a write refused), the contract of
forward()'s output; any other error is the participant's own, or a limit the cgroup saw passed."""

_NOT_OPENED: dict[int | None, str] = {
    errno.ELOOP: "is a symbolic link",
    errno.ENOENT: "is missing",
    errno.ENOTDIR: "is not a folder",
}


def _open_regular(
    folder: Path, name: str, *, max_bytes: int, what: str, phase: str, remove: bool = False
) -> bytes:
    """A file the sandbox wrote in its output ``folder``, refusing anything but a small regular
    file; ``remove`` deletes it once read.

    Neither the folder nor the file is followed if it is a symbolic link: the sandbox can
    replace both, and a link (resolved here, outside the sandbox) could point at any file of
    this machine, which would then be read, and deleted, on the sandbox's behalf. The file is
    opened and removed relative to the folder's descriptor, so swapping the folder later changes
    nothing.
    """
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK
    try:
        folder_fd = os.open(folder, flags | os.O_DIRECTORY)
    except OSError as exc:  # a link gives ENOTDIR here; name it for what it is
        errno_ = errno.ELOOP if folder.is_symlink() else exc.errno
        problem = _NOT_OPENED.get(errno_, f"cannot be opened ({exc.strerror})")
        raise SandboxFailure(
            Failure.OUTPUT_CONTRACT, phase, f"the output folder {problem}"
        ) from None
    try:
        try:
            fd = os.open(name, flags, dir_fd=folder_fd)
        except OSError as exc:
            problem = _NOT_OPENED.get(exc.errno, f"cannot be opened ({exc.strerror})")
            raise SandboxFailure(Failure.OUTPUT_CONTRACT, phase, f"{what} {problem}") from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise SandboxFailure(
                    Failure.OUTPUT_CONTRACT, phase, f"{what} is not a regular file"
                )
            if info.st_size > max_bytes:
                raise SandboxFailure(
                    Failure.TOO_MUCH_OUTPUT, phase, f"{what} holds {info.st_size} bytes"
                )
            with os.fdopen(fd, "rb", closefd=False) as f:
                raw = f.read(max_bytes + 1)
        finally:
            os.close(fd)
        if remove:
            with contextlib.suppress(OSError):
                os.unlink(name, dir_fd=folder_fd)
        return raw
    finally:
        os.close(folder_fd)


def read_logits(
    box: Box, name: Any, *, contract: OutputContract, phase: str
) -> npt.NDArray[np.float32]:
    """Outputs of ``forward()`` the sandbox wrote as ``.npy``, held to the kind's ``contract``:
    no pickle, floats, the contract's shape, finite."""
    if not isinstance(name, str) or "/" in name or name.startswith("."):
        raise SandboxFailure(Failure.PROTOCOL, phase, f"a bad file name {name!r}")
    raw = _open_regular(
        box.out,
        name,
        max_bytes=box.limits.scratch_mb * 2**20,
        what=f"the output {name}",
        phase=phase,
        remove=True,
    )
    try:
        return contract.parse(raw)
    except OutputContractError as exc:
        raise SandboxFailure(Failure.OUTPUT_CONTRACT, phase, str(exc)) from None


def read_weights(box: Box, name: Any, *, phase: str) -> bytes:
    """The best epoch's weights as ``safetensors`` bytes, checked to parse as plain tensors."""
    from safetensors.numpy import load as load_safetensors

    if name != "weights.safetensors":
        raise SandboxFailure(Failure.PROTOCOL, phase, f"a bad weights file name {name!r}")
    raw = _open_regular(
        box.out,
        name,
        max_bytes=box.limits.file_size_mb * 2**20,
        what="the weights",
        phase=phase,
    )
    try:
        load_safetensors(raw)
    except Exception as exc:  # safetensors raises its own error types
        raise SandboxFailure(
            Failure.OUTPUT_CONTRACT, phase, f"the weights are not valid safetensors: {exc}"
        ) from None
    return raw


def guest_failure(box: Box, message: dict[str, Any], phase: str) -> SandboxFailure:
    """The guest's ``error`` message: a failure it may name (:data:`GUEST_KINDS`), or else the
    participant's own error (or a limit the box measured), with their traceback."""
    kind = message.get("kind")
    if isinstance(kind, str) and kind in GUEST_KINDS:
        failure = Failure(kind)
    else:
        failure = box.cause(Failure.TRAINING_ERROR)
    return SandboxFailure(failure, phase, text(message.get("traceback")))


def exit_failure(box: Box, message: dict[str, Any], phase: str) -> SandboxFailure:
    """The job's process ended without its last message: say how, from what was measured."""
    import signal

    sig, code = message.get("signal"), message.get("code")
    if isinstance(sig, int):
        with contextlib.suppress(ValueError):
            if signal.Signals(sig) == signal.SIGXFSZ:
                return SandboxFailure(
                    Failure.FILE_LIMIT, phase,
                    f"a file grew past {box.limits.file_size_mb} MiB",
                )  # fmt: skip
        cause = box.cause(Failure.EXITED)
        return SandboxFailure(cause, phase, f"the process was killed by signal {sig}")
    return SandboxFailure(
        box.cause(Failure.EXITED), phase, f"the process exited with status {code} before it "
        "finished (sys.exit or os._exit in the submitted code?)",
    )  # fmt: skip


def with_output(exc: SandboxFailure, box: Box | None) -> str:
    """The participant's message: what happened, and the end of what their code printed."""
    message = str(exc)
    tail = box.output_tail.strip()[-2000:] if box is not None else ""
    return f"{message}\n--- last output ---\n{tail}" if tail else message


def text(value: Any, limit: int = 8000) -> str:
    """The end of a guest's text field (a traceback), or '' for anything but a string."""
    return value[-limit:] if isinstance(value, str) else ""
