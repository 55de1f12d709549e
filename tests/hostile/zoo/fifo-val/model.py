"""Hands over a FIFO: it replaces ``numpy.save`` so that the file the guest renames to
val.npy is a named pipe nobody writes to (a naive reader would wait forever)."""

from __future__ import annotations

import math
import os

import lightning.pytorch as pl
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


def fifo_save(
    file: object, arr: object, allow_pickle: bool = True, fix_imports: bool = True
) -> None:
    path = file.name  # type: ignore[attr-defined]
    os.unlink(path)
    os.mkfifo(path)


np.save = fifo_save


class Net(pl.LightningModule):
    """A tiny linear classifier whose numpy.save makes FIFOs."""

    def __init__(self, num_classes: int, input_shape: tuple[int, ...]) -> None:
        super().__init__()
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
