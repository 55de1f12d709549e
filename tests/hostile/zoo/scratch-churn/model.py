"""Races the supervisor's measurement of /scratch: a thread keeps creating and removing
hundreds of folders there while the supervisor walks it after each epoch."""

from __future__ import annotations

import math
import os
import threading

import lightning.pytorch as pl
import torch
from torch import nn
from torch.nn import functional as F


def churn() -> None:
    i = 0
    while True:
        path = f"/scratch/churn-{i % 400}"
        try:
            os.mkdir(path)
            open(f"{path}/f", "w").close()
            os.unlink(f"{path}/f")
            os.rmdir(path)
        except OSError:
            pass
        i += 1


class Net(pl.LightningModule):
    """A tiny linear classifier that churns folders in /scratch."""

    def __init__(self, num_classes: int, input_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.linear = nn.Linear(math.prod(input_shape), num_classes)
        for i in range(400):
            os.makedirs(f"/scratch/keep-{i}", exist_ok=True)
        threading.Thread(target=churn, daemon=True).start()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(self(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)
