"""A linear baseline: softmax regression on the flattened image, L2-regularised, trained by Adam."""

from __future__ import annotations

import math

import lightning.pytorch as pl
import torch
from torch import nn
from torch.nn import functional as F


class LogisticRegression(pl.LightningModule):
    def __init__(
        self, num_classes: int, input_shape: tuple[int, ...], lr: float = 1e-2, l2: float = 1e-4
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.linear = nn.Linear(math.prod(input_shape), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(self(x), y) + self.hparams.l2 * self.linear.weight.pow(2).sum()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
