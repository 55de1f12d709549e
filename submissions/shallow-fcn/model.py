"""A shallow fully convolutional baseline: small receptive field, no down-sampling, 2D or 3D."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch import nn
from torch.nn import functional as F


class ShallowFCN(pl.LightningModule):
    def __init__(
        self, num_classes: int, input_shape: tuple[int, ...], lr: float = 1e-2, width: int = 16
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        conv = nn.Conv3d if len(input_shape) == 4 else nn.Conv2d
        self.net = nn.Sequential(
            conv(input_shape[0], width, 3, padding=1),
            nn.ReLU(),
            conv(width, width, 3, padding=1),
            nn.ReLU(),
            conv(width, num_classes, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(self(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
