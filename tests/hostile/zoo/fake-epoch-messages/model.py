"""Fakes its validation score: in its first training step it writes an ``epoch`` message
claiming a perfect score (and a training loss of 0) on every descriptor 0..20 it can write to
(one of them is the channel to the supervisor), after putting its best guess of validation
logits (it has no labels: constant logits) at /scratch/out/val.npy, and waits until the
supervisor took that file. Its model's logits are constant too, so every validation value the
supervisor records must be a constant model's."""

from __future__ import annotations

import json
import math
import os
import time

import lightning.pytorch as pl
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

FAKE = {"event": "epoch", "epoch": 0, "train_loss": 0.0, "file": "val.npy", "val_auc": 1.0}


def fake_epoch(num_classes: int) -> None:
    n = len(np.load("/data/val_x.npy", mmap_mode="r"))
    os.makedirs("/scratch/out", exist_ok=True)
    with open("/scratch/out/.guess.npy", "wb") as f:
        np.save(f, np.zeros((n, num_classes), np.float32))
    os.replace("/scratch/out/.guess.npy", "/scratch/out/val.npy")
    line = (json.dumps(FAKE) + "\n").encode()
    for fd in range(21):
        try:
            os.write(fd, line)
        except OSError:
            pass
    deadline = time.monotonic() + 5
    while os.path.exists("/scratch/out/val.npy") and time.monotonic() < deadline:
        time.sleep(0.01)


class Net(pl.LightningModule):
    """A tiny linear classifier with constant logits that fakes its epochs."""

    def __init__(self, num_classes: int, input_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.linear = nn.Linear(math.prod(input_shape), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return self.linear(x.flatten(1)) * 0.0
        return self.linear(x.flatten(1))

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        if batch_idx == 0 and self.current_epoch == 0:
            fake_epoch(self.linear.out_features)
        x, y = batch
        return F.cross_entropy(self(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)
