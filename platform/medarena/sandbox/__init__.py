"""Runs submitted code: the sandbox process, the narrow channel to it, and its limits.

``box`` (:class:`Box`, one running sandbox) is made of ``bubblewrap`` (the command line:
namespaces, mounts, rlimits, environment), ``channel`` (messages and the output drain),
``cgroups`` (process and memory caps) and ``reaping`` (what SIGKILLed owners left behind);
``failures`` names how a box ends, ``limits`` what it may use.

Nothing here imports submitted code: the guest program (``guest.py``) does that inside the box,
and only plain data comes back (JSON messages, ``.npy`` arrays, ``.safetensors`` weights).
"""

from __future__ import annotations

from medarena.sandbox.box import Box
from medarena.sandbox.bubblewrap import SandboxSupport, check_runtime_paths, sandbox_support
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
