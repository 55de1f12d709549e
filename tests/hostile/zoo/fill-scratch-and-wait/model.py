"""Writes twenty 10 MB files to /scratch in its first training step (each under the file size
limit, 200 MB in all, over the 64 MiB scratch allowance), then holds them for five seconds
inside the same epoch. A platform that measures scratch only between epochs lets the step
finish, and the step then raises ``LEAK``; one that measures it while the box works stops the
box first."""

from __future__ import annotations

import math
import time

import lightning.pytorch as pl
import torch
from torch import nn
from torch.nn import functional as F


class Net(pl.LightningModule):
    """A tiny linear classifier that fills /scratch and waits."""

    def __init__(self, num_classes: int, input_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.linear = nn.Linear(math.prod(input_shape), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        if batch_idx == 0:
            for i in range(20):
                with open(f"/scratch/part-{i}.bin", "wb") as f:
                    f.write(b"x" * 10 * 2**20)
                time.sleep(0.05)
            time.sleep(5)
            raise RuntimeError("LEAK: 200 MB stayed in /scratch for five seconds")
        x, y = batch
        return F.cross_entropy(self(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)
