"""Calls unshare, setns, mount, chroot and setuid through ctypes to leave or remake its
namespaces and to remount /code writable; each must fail.

If the attack finds what it must not, it raises ``RuntimeError("LEAK: ...")``; if its own
machinery is broken (a step that must work failed) it raises ``RuntimeError("BROKEN: ...")``;
otherwise it trains honestly.
"""

from __future__ import annotations

import ctypes
import math
import os

import lightning.pytorch as pl
import torch
from torch import nn
from torch.nn import functional as F

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x20000, 0x10000000, 0x20000000, 0x40000000
MS_REMOUNT, MS_BIND = 32, 4096


def attack() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    done = []
    for name, flag in (
        ("user", CLONE_NEWUSER),
        ("mount", CLONE_NEWNS),
        ("net", CLONE_NEWNET),
        ("pid", CLONE_NEWPID),
    ):
        if libc.unshare(flag) == 0:
            done.append(f"unshare({name})")
    for ns in ("mnt", "net", "pid", "user"):
        try:
            fd = os.open(f"/proc/1/ns/{ns}", os.O_RDONLY)
        except OSError:
            continue
        if libc.setns(fd, 0) == 0:
            done.append(f"setns({ns})")
        os.close(fd)
    if libc.mount(b"tmpfs", b"/code", b"tmpfs", 0, None) == 0:
        done.append("mount tmpfs on /code")
    if libc.mount(b"/code", b"/code", None, MS_REMOUNT | MS_BIND, None) == 0:
        done.append("remount /code writable")
    if libc.chroot(b"/tmp") == 0:
        done.append("chroot")
    try:
        os.setuid(0)
        done.append("setuid(0)")
    except OSError:
        pass
    if done:
        raise RuntimeError("LEAK: " + "; ".join(done))


class Net(pl.LightningModule):
    """A tiny linear classifier that first tries to leave its namespaces."""

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
