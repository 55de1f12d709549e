"""The trusted supervisor of a worker: runs each job's submitted code in a sandbox, and scores.

A supervisor holds one task's :class:`WorkerData` (validation labels included) and never imports
submitted code. For each trial it loads the submission into a sandbox (:class:`Box`) that sees
the training inputs and targets and the validation *inputs*; after every epoch the sandbox hands
over validation logits, which the supervisor checks against the task's output contract, decodes
and scores; it counts patience, names the best epoch and tells the sandbox to keep that epoch's
weights, which come back as ``safetensors``. Test inputs only ever enter a new inference sandbox
with the final weights (:meth:`Supervisor.predict`).

Boxes are expensive to start (they import torch), cheap to reuse: the supervisor keeps one spare
box started ahead, which the next submission takes; a submission keeps its box for all its trials
on this worker (each trial is a fresh fork inside it), and a box never serves two submissions.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import os
import shutil
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from medarena.exceptions import PlatformError
from medarena.metrics import get_metric
from medarena.sandbox import Box, Failure, SandboxFailure, SandboxLimits, sandbox_support
from medarena.sandbox.box import private_folder, reap_stale
from medarena.tasks.data import WorkerData
from medarena.tasks.kinds import get_kind
from medarena.tasks.kinds._base import Predictions

log = logging.getLogger(__name__)

EXIT_TIMEOUT_S = 10.0
"""How long a job's process may take to exit after its last message."""
DECODE_BATCH = 64
GUEST_KINDS = frozenset(
    {Failure.NON_FINITE_LOSS, Failure.MEMORY_LIMIT, Failure.FILE_LIMIT, Failure.OUTPUT_CONTRACT}
)
"""What the guest may name an error in the participant's code: a loss it checked, a limit the
kernel enforced from inside the process (an allocation or a write refused), the contract of
forward()'s output; any other error is the participant's own, or a limit the cgroup saw passed."""
SUPERVISOR_PREFIX = "medarena-supervisor-"
PLATFORM_FAILURE = (
    "platform error: an unexpected error occurred while running this job; the operator's log "
    "has the details"
)
SPARE_NICE = 19
"""A spare box imports torch at the lowest CPU priority, taking only what running trials leave."""


@dataclass(frozen=True)
class TrialConfig:
    """What one trial needs besides the data: which code, which parameters, which budget."""

    submission_sha256: str
    entry_file: str
    entry_class: str
    params: dict[str, Any]
    metrics: tuple[str, ...]
    max_epochs: int
    patience: int
    batch_size: int
    seed: int
    use_gpu: bool = False
    time_limit_s: float | None = None


@dataclass
class TrialOutcome:
    """What a job sends back, built by the supervisor from checked plain data.

    ``failure`` names what went wrong (a :class:`~medarena.sandbox.Failure` value, '' when none);
    ``weights`` are the best epoch's ``safetensors``; ``test_predictions`` come only from an
    inference job.
    """

    ok: bool
    best_value: float = math.nan
    best_epoch: int = -1
    epochs: int = 0
    fit_seconds: float = 0.0
    history: list[dict[str, float]] = field(default_factory=list)
    weights: bytes | None = None
    test_predictions: Predictions | None = None
    error: str = ""
    failure: str = ""
    pruned: bool = False
    sandboxed: bool = True


EpochHook = Callable[[int, dict[str, float]], bool]
"""Called after each epoch with (epoch, history row); answering true stops the trial (pruning)."""


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


_NOT_OPENED: dict[int | None, str] = {
    errno.ELOOP: "is a symbolic link",
    errno.ENOENT: "is missing",
    errno.ENOTDIR: "is not a folder",
}


def read_logits(
    box: Box, name: Any, *, shape: tuple[int, ...], contract: str, phase: str
) -> npt.NDArray[np.float32]:
    """Logits the sandbox wrote as ``.npy``: no pickle, float, the contract's shape, finite."""
    import io

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
        array = np.load(io.BytesIO(raw), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise SandboxFailure(
            Failure.OUTPUT_CONTRACT, phase, f"forward()'s output is not a plain .npy array: {exc}"
        ) from None
    if not isinstance(array, np.ndarray) or array.dtype.kind != "f":
        raise SandboxFailure(
            Failure.OUTPUT_CONTRACT, phase, f"forward() must return floats, got {array.dtype}"
        )
    if array.shape != shape:
        raise SandboxFailure(
            Failure.OUTPUT_CONTRACT, phase, f"forward() must return {contract} = {shape}, "
            f"got {array.shape}",
        )  # fmt: skip
    if not np.all(np.isfinite(array)):
        raise SandboxFailure(
            Failure.OUTPUT_CONTRACT, phase, "forward() returned non-finite values (NaN or inf)"
        )
    return array.astype(np.float32, copy=False)


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


def decode(
    data: WorkerData, logits: npt.NDArray[np.float32], *, spacing: Any, origin: Any
) -> Predictions:
    """Trusted decoding of raw logits into the kind's predictions, batch by batch."""
    kind = get_kind(data.kind)
    parts, offsets = [], []
    for start in range(0, len(logits), DECODE_BATCH):
        stop = start + DECODE_BATCH
        parts.append(
            kind.decode(logits[start:stop], spacing=spacing[start:stop], origin=origin[start:stop])
        )
        offsets.append(start)
    return kind.concat(parts, offsets=offsets)


class Supervisor:
    """Runs the jobs of one worker in sandboxes; see the module docstring."""

    def __init__(
        self,
        data: WorkerData,
        *,
        limits: SandboxLimits,
        allow_unsandboxed: bool = False,
        threads: int = 1,
        gpu: bool = False,
    ) -> None:
        support = sandbox_support()
        if not support.available and not allow_unsandboxed:
            raise PlatformError(
                f"no sandbox can run on this machine ({support.reason}), so submitted code is "
                "refused. Install bubblewrap (`apt-get install bubblewrap`), or set "
                "MEDARENA_ALLOW_UNSANDBOXED=1 to run trusted submissions without a sandbox "
                "(they are marked unsandboxed)"
            )
        self.sandboxed = support.available
        self.data, self.limits, self.threads, self.gpu = data, limits, threads, gpu
        reap_stale(SUPERVISOR_PREFIX)
        self._root = private_folder(SUPERVISOR_PREFIX)
        self.kind = get_kind(data.kind)
        self._train_files = {
            "train_x.npy": self._save("train/train_x.npy", data.train_x),
            "train_y.npy": self._save("train/train_y.npy", data.train_y),
            "val_x.npy": self._save("train/val_x.npy", data.val_x),
        }
        self._test_inputs = self._save("test/inputs.npy", data.test_x)
        self._box: tuple[str, Box] | None = None
        self._spare: Box | None = self._start_box()
        self._spare_started = False

    def _save(self, name: str, array: npt.NDArray[Any]) -> Path:
        path = self._root / name
        path.parent.mkdir(mode=0o700, exist_ok=True)
        np.save(path, np.ascontiguousarray(array), allow_pickle=False)
        return path

    def _start_box(self, *, nice: int = SPARE_NICE) -> Box:
        return Box(
            limits=self.limits,
            sandboxed=self.sandboxed,
            threads=self.threads,
            gpu=self.gpu,
            nice=nice,
        )

    def warm(self) -> None:
        """Wait until the spare box has started (imported torch), so that the next job does
        not wait for it."""
        if self._spare is None:
            self._spare = self._start_box(nice=0)
        if self._spare_started:
            return
        box = self._spare
        box.renice(0)  # it is wanted now
        try:
            message = box.receive(phase="start", timeout=self.limits.start_s)
        except SandboxFailure as exc:
            self._spare = None
            box.close()
            raise PlatformError(f"the sandbox did not start: {exc}\n{box.output_tail}") from exc
        if message.get("event") != "started":
            self._spare = None
            box.close()
            raise PlatformError(f"the sandbox did not start: it said {message}")
        self._spare_started = True

    def _take_spare(self) -> Box:
        """The spare box (started ahead), waited for; a new spare starts behind it."""
        self.warm()
        box = self._spare
        assert box is not None
        box.renice(0)
        self._spare = self._start_box()
        self._spare_started = False
        return box

    def _box_for(self, sha256: str, files: dict[str, bytes]) -> Box:
        """The box of this submission, loaded with its code and the training inputs."""
        if self._box is not None:
            owner, box = self._box
            if owner == sha256 and box.alive:
                return box
            box.close()
            self._box = None
        box = self._take_spare()
        box.load(code=files, data=self._train_files)
        self._box = (sha256, box)
        return box

    def _drop(self, box: Box) -> None:
        if self._box is not None and self._box[1] is box:
            self._box = None
        box.close()

    # Jobs

    def _job(self, mode: str, config: TrialConfig) -> dict[str, Any]:
        return {
            "mode": mode,
            "entry_file": config.entry_file,
            "entry_class": config.entry_class,
            "params": config.params,
            "num_classes": self.data.num_classes,
            "input_shape": list(self.data.input_shape),
            "seed": config.seed,
            "max_epochs": config.max_epochs,
            "batch_size": config.batch_size,
            "time_limit_s": config.time_limit_s,
            "threads": self.threads,
            "use_gpu": config.use_gpu,
        }

    def _ready(self, box: Box) -> None:
        """Wait for the job's import and construction; raise on their failure."""
        message = box.receive(phase="import", timeout=self.limits.import_s)
        if message["event"] == "error":
            kind = Failure.IMPORT_ERROR if message.get("kind") == "import" else (
                Failure.INTERFACE_ERROR
            )  # fmt: skip
            raise SandboxFailure(kind, "import", _text(message.get("traceback")))
        self._expect(box, message, "ready", phase="import")

    def _expect(self, box: Box, message: dict[str, Any], event: str, *, phase: str) -> None:
        if message["event"] == event:
            return
        if message["event"] == "exit":
            raise _exit_failure(box, message, phase)
        if message["event"] == "error":
            kind = message.get("kind")
            if isinstance(kind, str) and kind in GUEST_KINDS:
                failure = Failure(kind)
            else:
                failure = box.cause(Failure.TRAINING_ERROR)
            raise SandboxFailure(failure, phase, _text(message.get("traceback")))
        raise box.fail(Failure.PROTOCOL, phase, f"expected {event!r}, got {message['event']!r}")

    def _finish(self, box: Box) -> None:
        """Wait for the job's process to exit; a box whose child lingers is not reused."""
        try:
            while box.busy:
                message = box.receive(phase="exit", timeout=EXIT_TIMEOUT_S)
                if message["event"] != "exit":
                    raise box.fail(Failure.PROTOCOL, "exit", f"unexpected {message['event']!r}")
        except SandboxFailure:
            self._drop(box)

    def run(self, job: Any) -> TrialOutcome:
        """Run a :class:`~medarena.execution.TrialJob`: a dry run or a trial."""
        config: TrialConfig = job.config
        outcome = TrialOutcome(ok=False, sandboxed=self.sandboxed)
        box = None
        try:
            box = self._box_for(config.submission_sha256, job.files)
            if job.dry_run:
                self._dry_run(box, config)
            else:
                self._trial(box, config, outcome, job.on_epoch)
            outcome.ok = True
        except SandboxFailure as exc:
            outcome.error, outcome.failure = _with_output(exc, box), exc.kind
            if box is not None and not box.alive:
                self._drop(box)
        except Exception:  # the platform's fault: this job fails, the worker goes on
            log.exception("unexpected error while supervising a job of %s", job.owner)
            outcome.error = PLATFORM_FAILURE
            if box is not None:
                self._drop(box)
                box = None
        if box is not None and box.alive:
            self._finish(box)
        return outcome

    def _dry_run(self, box: Box, config: TrialConfig) -> None:
        box.start_job(**self._job("dry", config))
        self._ready(box)
        message = box.receive(phase="dry run", timeout=self.limits.epoch_s)
        self._expect(box, message, "dry", phase="dry run")
        if box.scratch_bytes() > self.limits.scratch_mb * 2**20:
            raise box.fail(
                Failure.FILE_LIMIT, "dry run", f"scratch over {self.limits.scratch_mb} MiB"
            )
        n = min(2, len(self.data.val_x))
        shape = self.kind.logits_shape(
            n, num_classes=self.data.num_classes, input_shape=self.data.input_shape
        )
        read_logits(box, message.get("file"), shape=shape, contract=self.kind.contract,
                    phase="dry run")  # fmt: skip

    def _trial(
        self, box: Box, config: TrialConfig, outcome: TrialOutcome, on_epoch: EpochHook | None
    ) -> None:
        data, limits = self.data, self.limits
        primary = config.metrics[0]
        info = get_metric(primary)
        shape = self.kind.logits_shape(
            len(data.val_x), num_classes=data.num_classes, input_shape=data.input_shape
        )
        box.start_job(**self._job("fit", config))
        self._ready(box)
        start = time.perf_counter()
        deadline = math.inf if config.time_limit_s is None else start + config.time_limit_s + 30
        waited, stop = 0, False
        while True:
            phase = f"epoch {outcome.epochs}"
            timeout = min(limits.epoch_s, deadline - time.perf_counter())
            message = box.receive(phase=phase, timeout=max(timeout, 0.0))
            box.reset_output()
            if message["event"] == "weights":
                break
            self._expect(box, message, "epoch", phase=phase)
            if stop or outcome.epochs >= config.max_epochs:
                # Each answer tells the sandbox a little about validation: no more than budgeted.
                raise box.fail(
                    Failure.PROTOCOL, phase, f"an epoch past the end of training (the budget "
                    f"is {config.max_epochs} epochs, and training was told to stop)",
                )  # fmt: skip
            if box.scratch_bytes() > limits.scratch_mb * 2**20:
                raise box.fail(Failure.FILE_LIMIT, phase, f"scratch over {limits.scratch_mb} MiB")
            logits = read_logits(box, message.get("file"), shape=shape,
                                 contract=self.kind.contract, phase=phase)  # fmt: skip
            val = data.val_reference
            predictions = decode(data, logits, spacing=val.spacing, origin=val.origin)
            row = {"epoch": float(outcome.epochs)}
            loss = message.get("train_loss")
            if isinstance(loss, int | float) and math.isfinite(loss):
                row["train_loss"] = float(loss)
            scores = self.kind.validation_scores(predictions, val, config.metrics)
            row.update({f"val_{name}": value for name, value in scores.items()})
            outcome.history.append(row)
            value = row[f"val_{primary}"]
            keep = not math.isnan(value) and (
                outcome.best_epoch < 0 or info.better(value, outcome.best_value)
            )
            if keep:
                outcome.best_value, outcome.best_epoch, waited = value, outcome.epochs, 0
            else:
                waited += 1
            stop = waited >= config.patience
            if on_epoch is not None and on_epoch(outcome.epochs, row):
                outcome.pruned = stop = True
            outcome.epochs += 1
            box.send(op="stop" if stop else "continue", keep=keep)
        outcome.fit_seconds = time.perf_counter() - start
        if outcome.best_epoch < 0:
            raise SandboxFailure(
                Failure.OUTPUT_CONTRACT, "validation",
                f"the validation metric {primary!r} was NaN in every epoch; check that forward() "
                f"returns finite {self.kind.contract}",
            )  # fmt: skip
        outcome.weights = read_weights(box, message.get("file"), phase="export")

    def predict(self, config: TrialConfig, files: dict[str, bytes], weights: bytes) -> TrialOutcome:
        """The best weights predict the test inputs in a new box that gets nothing else.

        Errors say only that prediction failed and how (a limit, the contract): the
        participant's traceback and output could carry test data, so they are not relayed.
        """
        outcome = TrialOutcome(ok=False, sandboxed=self.sandboxed)
        box = self._take_spare()
        try:
            model = self._root / f"model-{os.getpid()}-{time.monotonic_ns()}.safetensors"
            model.write_bytes(weights)
            box.load(
                code=files, data={"inputs.npy": self._test_inputs, "weights.safetensors": model}
            )
            model.unlink()
            box.start_job(**self._job("predict", config))
            self._ready(box)
            message = box.receive(phase="prediction", timeout=self.limits.predict_s)
            if message["event"] != "predicted":
                raise SandboxFailure(
                    box.cause(Failure.PREDICTION_ERROR), "prediction of the test inputs"
                )
            data = self.data
            shape = self.kind.logits_shape(
                len(data.test_x), num_classes=data.num_classes, input_shape=data.input_shape
            )
            logits = read_logits(box, message.get("file"), shape=shape,
                                 contract=self.kind.contract, phase="prediction")  # fmt: skip
            outcome.test_predictions = decode(
                data, logits, spacing=data.test_spacing, origin=data.test_origin
            )
            outcome.ok = True
        except SandboxFailure as exc:
            outcome.failure = exc.kind
            outcome.error = (
                f"{exc.kind} while predicting the test inputs (details are withheld: they "
                "could carry test data); the same code passed on the validation inputs"
            )
        except Exception:  # the platform's fault
            log.exception("unexpected error while predicting the test inputs")
            outcome.error = PLATFORM_FAILURE
        finally:
            box.close()
        return outcome

    def close(self) -> None:
        for box in (self._spare, self._box[1] if self._box else None):
            if box is not None:
                box.close()
        self._spare = self._box = None
        shutil.rmtree(self._root, ignore_errors=True)


def _text(value: Any, limit: int = 8000) -> str:
    return value[-limit:] if isinstance(value, str) else ""


def _exit_failure(box: Box, message: dict[str, Any], phase: str) -> SandboxFailure:
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


def _with_output(exc: SandboxFailure, box: Box | None) -> str:
    """The participant's message: what happened, and the end of what their code printed."""
    text = str(exc)
    tail = box.output_tail.strip()[-2000:] if box is not None else ""
    return f"{text}\n--- last output ---\n{tail}" if tail else text
