"""Writes to its own code (/code), its inputs (/data: hard links of the supervisor's files),
the guest program, the Python runtime and /dev; each must fail (read-only).

If the attack finds what it must not, it raises ``RuntimeError("LEAK: ...")``; if its own
machinery is broken (a step that must work failed) it raises ``RuntimeError("BROKEN: ...")``;
otherwise it trains honestly.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import lightning.pytorch as pl
import torch
from torch import nn
from torch.nn import functional as F


def attack() -> None:
    Path("/scratch/probe").write_bytes(b"ok")  # raises if even /scratch is not writable
    done = []
    targets = [
        "/code/model.py",
        "/code/new.py",
        "/data/train_y.npy",
        "/data/val_x.npy",
        "/data/new.npy",
        "/guest/guest.py",
        f"{sys.prefix}/pwned.pth",
        "/usr/pwned",
        "/dev/pwned",
    ]
    for path in targets:
        try:
            with open(path, "ab") as f:
                f.write(b"pwned")
            done.append(f"wrote {path}")
        except OSError:
            pass
        for how, act in (("removed", os.remove), ("chmod", lambda p: os.chmod(p, 0o777))):
            try:
                act(path)
                done.append(f"{how} {path}")
            except OSError:
                pass
    if done:
        raise RuntimeError("LEAK: " + "; ".join(done))


class Net(pl.LightningModule):
    """A tiny linear classifier that first writes to its read-only folders."""

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
