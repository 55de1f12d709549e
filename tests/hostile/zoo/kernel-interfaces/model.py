"""Opens the kernel interfaces sandbox escapes usually go through: an io_uring, a userfaultfd
(user-mode only, which an unprivileged process may have), a perf event on itself, an eBPF map,
a new session keyring, ``ptrace(TRACEME)``. Each must fail with ``EPERM``.

If the attack finds what it must not, it raises ``RuntimeError("LEAK: ...")``; if its own
machinery is broken (a step that must work failed) it raises ``RuntimeError("BROKEN: ...")``;
otherwise it trains honestly.
"""

from __future__ import annotations

import ctypes
import errno
import math
import os
import platform

import lightning.pytorch as pl
import torch
from torch import nn
from torch.nn import functional as F

NUMBERS = {  # the system call numbers of each architecture
    "x86_64": {
        "io_uring_setup": 425, "userfaultfd": 323, "perf_event_open": 298, "bpf": 321,
        "keyctl": 250, "ptrace": 101, "getpid": 39,
    },
    "aarch64": {
        "io_uring_setup": 425, "userfaultfd": 282, "perf_event_open": 241, "bpf": 280,
        "keyctl": 219, "ptrace": 117, "getpid": 172,
    },
}  # fmt: skip
UFFD_USER_MODE_ONLY = 1
KEYCTL_JOIN_SESSION_KEYRING = 1
BPF_MAP_CREATE, BPF_MAP_TYPE_ARRAY = 0, 2
PTRACE_TRACEME = 0


class PerfEventAttr(ctypes.Structure):
    """The start of ``struct perf_event_attr``: a software CPU clock of this process."""

    _fields_ = [("type", ctypes.c_uint32), ("size", ctypes.c_uint32),
                ("config", ctypes.c_uint64), ("rest", ctypes.c_uint64 * 14)]  # fmt: skip


def attack() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    numbers = NUMBERS[platform.machine()]

    def call(name: str, *args: object) -> tuple[int, int]:
        ctypes.set_errno(0)
        result = libc.syscall(numbers[name], *args)
        return result, ctypes.get_errno()

    if call("getpid")[0] != os.getpid():
        raise RuntimeError("BROKEN: syscall(getpid) does not work")
    params = ctypes.create_string_buffer(120)  # struct io_uring_params, zeroed
    attr = PerfEventAttr(type=1, size=ctypes.sizeof(PerfEventAttr), config=0)  # SW_CPU_CLOCK
    attr.rest[3] = 0b1100000  # the flags: exclude_kernel | exclude_hv
    bpf_attr = (ctypes.c_uint32 * 4)(BPF_MAP_TYPE_ARRAY, 4, 4, 1)  # key 4 B, value 4 B, 1 entry
    attempts = {
        "io_uring_setup": (ctypes.c_uint(4), params),
        "userfaultfd": (ctypes.c_int(os.O_CLOEXEC | UFFD_USER_MODE_ONLY),),
        "perf_event_open": (
            ctypes.byref(attr),
            ctypes.c_int(0),
            ctypes.c_int(-1),
            ctypes.c_int(-1),
            ctypes.c_ulong(0),
        ),
        "bpf": (ctypes.c_int(BPF_MAP_CREATE), bpf_attr, ctypes.c_uint(16)),
        "keyctl": (ctypes.c_int(KEYCTL_JOIN_SESSION_KEYRING), None),
        "ptrace": (ctypes.c_long(PTRACE_TRACEME), ctypes.c_long(0), None, None),
    }
    opened = []
    for name, args in attempts.items():
        result, error = call(name, *args)
        if result >= 0:
            opened.append(name)
        elif error != errno.EPERM:
            opened.append(f"{name} (failed with {errno.errorcode.get(error, error)}, not EPERM)")
    if opened:
        raise RuntimeError("LEAK: the kernel answered " + "; ".join(opened))


class Net(pl.LightningModule):
    """A tiny linear classifier that first knocks on the kernel's less used doors."""

    def __init__(self, num_classes: int, input_shape: tuple[int, ...]) -> None:
        super().__init__()
        attack()
        self.linear = nn.Linear(math.prod(input_shape), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(self(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)
