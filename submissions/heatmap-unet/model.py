"""Detection as heatmap regression (as CenterNet-style detectors do): a 3D U-Net predicts, per
voxel, the logit of being a nodule centre; sparse positives are up-weighted in the loss."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from monai.networks.nets import UNet
from torch.nn import functional as F


class HeatmapUNet(pl.LightningModule):
    def __init__(
        self,
        num_classes: int,
        input_shape: tuple[int, ...],
        lr: float = 3e-3,
        base_channels: int = 8,
        positive_weight: float = 20.0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        c = base_channels
        self.net = UNet(
            spatial_dims=len(input_shape) - 1,
            in_channels=input_shape[0],
            out_channels=1,
            channels=(c, 2 * c, 4 * c),
            strides=(2, 2),
            num_res_units=1,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        x, heatmap = batch
        weight = 1.0 + (self.hparams.positive_weight - 1.0) * heatmap
        return F.binary_cross_entropy_with_logits(self(x), heatmap, weight=weight)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
