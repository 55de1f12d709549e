"""Turns the supervisor into a confused deputy: it replaces its output folder /scratch/out by a
symbolic link to a folder of the supervisor's machine (the test's victim folder, holding a
val.npy and a leaderboard.db), creates that path in its own /tmp so the guest can write
there, and sends a fake ``dry`` message naming leaderboard.db. A supervisor that followed
the link would read (and delete) the victim's files."""

from __future__ import annotations

import math
import os
import sys

import lightning.pytorch as pl
import torch
from torch import nn
from torch.nn import functional as F

PARAMS: dict = {}  # what the attack looks for; tests/hostile/test_zoo.py writes it


def attack() -> None:
    os.makedirs(PARAMS["victim"], exist_ok=True)  # inside the sandbox: its own /tmp
    os.rename("/scratch/out", "/scratch/out-moved")
    os.symlink(PARAMS["victim"], "/scratch/out")
    channel = int(sys.argv[1])
    os.write(channel, b'{"event": "ready"}\n{"event": "dry", "file": "leaderboard.db"}\n')


class Net(pl.LightningModule):
    """A tiny linear classifier that first links its output folder outside."""

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
