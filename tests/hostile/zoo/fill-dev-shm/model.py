"""Fills /dev/shm (shared memory: a tmpfs as large as half the machine's memory unless the
platform sizes it) with 10 MB files until it is full; if it never is (100 MB written) it goes
on honestly."""

from __future__ import annotations

import math

import lightning.pytorch as pl
import torch
from torch import nn
from torch.nn import functional as F


class Net(pl.LightningModule):
    """A tiny linear classifier that fills /dev/shm."""

    def __init__(self, num_classes: int, input_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.linear = nn.Linear(math.prod(input_shape), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        if batch_idx == 0:
            for i in range(10):
                with open(f"/dev/shm/part-{i}.bin", "wb") as f:
                    f.write(b"x" * 10 * 2**20)
        x, y = batch
        return F.cross_entropy(self(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)
