"""Runs submitted code: the sandbox process, the narrow channel to it, and its limits.

Nothing here imports submitted code: the guest program (``guest.py``) does that inside the box,
and only plain data comes back (JSON messages, ``.npy`` arrays, ``.safetensors`` weights).
"""

from __future__ import annotations

from medarena.sandbox.box import Box, SandboxSupport, check_runtime_paths, sandbox_support
from medarena.sandbox.failures import Failure, SandboxFailure
from medarena.sandbox.limits import SandboxLimits

__all__ = [
    "Box",
    "Failure",
    "SandboxFailure",
    "SandboxLimits",
    "SandboxSupport",
    "check_runtime_paths",
    "sandbox_support",
]
