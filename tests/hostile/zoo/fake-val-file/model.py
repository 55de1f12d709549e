"""Fakes its validation logits: a thread keeps replacing /scratch/out/val.npy (atomically)
with its best guess (it has no labels: constant logits), so that the supervisor may read
that file instead of the one the guest wrote. Its model's logits are constant too."""

from __future__ import annotations

import math
import os
import threading

import lightning.pytorch as pl
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


def rewrite_forever(num_classes: int) -> None:
    n = len(np.load("/data/val_x.npy", mmap_mode="r"))
    guess = np.zeros((n, num_classes), np.float32)
    while True:
        try:
            os.makedirs("/scratch/out", exist_ok=True)
            with open("/scratch/out/.guess.npy", "wb") as f:
                np.save(f, guess)
            os.replace("/scratch/out/.guess.npy", "/scratch/out/val.npy")
        except OSError:
            pass


class Net(pl.LightningModule):
    """A tiny linear classifier with constant logits and a thread that rewrites its val.npy."""

    def __init__(self, num_classes: int, input_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.linear = nn.Linear(math.prod(input_shape), num_classes)
        threading.Thread(target=rewrite_forever, args=(num_classes,), daemon=True).start()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return self.linear(x.flatten(1)) * 0.0
        return self.linear(x.flatten(1))

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(self(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)
