"""The trusted supervisor of a worker: runs each job's submitted code in a sandbox, and scores.

A supervisor holds one task's :class:`WorkerData` (validation labels included) and never imports
submitted code. For each trial it loads the submission into a sandbox (:class:`Box`) that sees
the training inputs and targets and the validation *inputs*; after every epoch the sandbox hands
over validation logits, which the supervisor reads and holds to the task kind's output contract
(:mod:`medarena.execution.outputs`), decodes and scores with the kind; it counts patience, names
the best epoch and tells the sandbox to keep that epoch's weights, which come back as
``safetensors``. Test inputs only ever enter a new inference sandbox with the final weights
(:meth:`Supervisor.predict`). What a job is given and gives back is in
:mod:`medarena.execution.trials`.

Boxes are expensive to start (they import torch), cheap to reuse: the supervisor keeps one spare
box started ahead, which the next submission takes; a submission keeps its box for all its trials
on this worker (each trial is a fresh fork inside it), and a box never serves two submissions.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from medarena.exceptions import PlatformError
from medarena.execution.outputs import (
    exit_failure,
    guest_failure,
    read_logits,
    read_weights,
    text,
    with_output,
)
from medarena.execution.trials import EpochHook, TrialConfig, TrialOutcome
from medarena.metrics import get_metric
from medarena.sandbox import Box, Failure, SandboxFailure, SandboxLimits, sandbox_support
from medarena.sandbox.box import private_folder, reap_stale
from medarena.tasks.data import WorkerData
from medarena.tasks.kinds import OutputContract, get_kind

__all__ = ["EpochHook", "Supervisor", "TrialConfig", "TrialOutcome"]

log = logging.getLogger(__name__)

EXIT_TIMEOUT_S = 10.0
"""How long a job's process may take to exit after its last message."""
SUPERVISOR_PREFIX = "medarena-supervisor-"
PLATFORM_FAILURE = (
    "platform error: an unexpected error occurred while running this job; the operator's log "
    "has the details"
)
SPARE_NICE = 19
"""A spare box imports torch at the lowest CPU priority, taking only what running trials leave."""


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
            raise SandboxFailure(kind, "import", text(message.get("traceback")))
        self._expect(box, message, "ready", phase="import")

    def _expect(self, box: Box, message: dict[str, Any], event: str, *, phase: str) -> None:
        if message["event"] == event:
            return
        if message["event"] == "exit":
            raise exit_failure(box, message, phase)
        if message["event"] == "error":
            raise guest_failure(box, message, phase)
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
            outcome.error, outcome.failure = with_output(exc, box), exc.kind
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
        box.check_scratch("dry run")
        contract = self._contract(min(2, len(self.data.val_x)))
        read_logits(box, message.get("file"), contract=contract, phase="dry run")

    def _contract(self, n: int) -> OutputContract:
        """What ``forward`` must return for ``n`` inputs of the task (the kind's contract)."""
        data = self.data
        return self.kind.output_contract(
            n, num_classes=data.num_classes, input_shape=data.input_shape
        )

    def _trial(
        self, box: Box, config: TrialConfig, outcome: TrialOutcome, on_epoch: EpochHook | None
    ) -> None:
        data, limits = self.data, self.limits
        primary = config.metrics[0]
        info = get_metric(primary)
        contract = self._contract(len(data.val_x))
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
            box.check_scratch(phase)
            logits = read_logits(box, message.get("file"), contract=contract, phase=phase)
            val = data.val_reference
            predictions = self.kind.decode_all(logits, spacing=val.spacing, origin=val.origin)
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
                Failure.OUTPUT_CONTRACT, "validation", contract.never_scored(primary)
            )
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
            contract = self._contract(len(data.test_x))
            logits = read_logits(box, message.get("file"), contract=contract, phase="prediction")
            outcome.test_predictions = self.kind.decode_all(
                logits, spacing=data.test_spacing, origin=data.test_origin
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
