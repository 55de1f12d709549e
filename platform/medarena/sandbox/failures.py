"""Why a sandboxed run ended badly: one vocabulary from the sandbox to the participant's page.

The supervisor decides the kind from what it measured outside (exit status, signal, cgroup
counters, deadlines, what the channel carried); the sandbox's own words only fill in the
traceback of an exception in the participant's code.
"""

from __future__ import annotations

from enum import StrEnum


class Failure(StrEnum):
    """The final state of a sandboxed phase that did not succeed."""

    IMPORT_ERROR = "import error"
    INTERFACE_ERROR = "interface error"
    TRAINING_ERROR = "error in training"
    NON_FINITE_LOSS = "non-finite loss"
    TIME_LIMIT = "time limit"
    MEMORY_LIMIT = "memory limit"
    PROCESS_LIMIT = "process limit"
    FILE_LIMIT = "file limit"
    OUTPUT_CONTRACT = "output contract violation"
    TOO_MUCH_OUTPUT = "too much output"
    EXITED = "exited"
    PROTOCOL = "protocol violation"
    PREDICTION_ERROR = "error in prediction"


class SandboxFailure(Exception):  # noqa: N818  (an outcome, named like the others in the field)
    """A phase of submitted code failed; ``str(exc)`` is for the participant.

    ``kind`` is what happened, ``phase`` where (``import``, ``epoch 3``, ``prediction``...), and
    ``detail`` the participant's own traceback or the limit that was passed.
    """

    def __init__(self, kind: Failure, phase: str, detail: str = "") -> None:
        self.kind, self.phase, self.detail = kind, phase, detail
        text = f"{kind} in {phase}"
        super().__init__(f"{text}: {detail}" if detail else text)
