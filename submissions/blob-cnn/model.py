"""A shallow blob detector: three dilated 3x3x3 convolutions (dilation 1, 2, 3; a receptive
field of 13 voxels, about a nodule and its surroundings) and a 1x1x1 head, no down-sampling."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch import nn
from torch.nn import functional as F

POSITIVE_WEIGHT = 100.0


class BlobCNN(pl.LightningModule):
    def __init__(
        self, num_classes: int, input_shape: tuple[int, ...], lr: float = 1e-2, width: int = 8
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        pad = {"padding_mode": "replicate"}  # zero padding would look like a dark rim
        self.net = nn.Sequential(
            nn.Conv3d(input_shape[0], width, 3, padding=1, **pad),
            nn.ReLU(),
            nn.Conv3d(width, width, 3, padding=2, dilation=2, **pad),
            nn.ReLU(),
            nn.Conv3d(width, width, 3, padding=3, dilation=3, **pad),
            nn.ReLU(),
            nn.Conv3d(width, 1, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        x, heatmap = batch
        weight = 1.0 + (POSITIVE_WEIGHT - 1.0) * heatmap
        return F.binary_cross_entropy_with_logits(self(x), heatmap, weight=weight)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
