"""A U-Net baseline for segmentation: MONAI's residual UNet, Dice + cross-entropy loss."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from monai.losses import DiceCELoss
from monai.networks.nets import UNet as MonaiUNet


class UNet(pl.LightningModule):
    def __init__(
        self,
        num_classes: int,
        input_shape: tuple[int, ...],
        lr: float = 3e-3,
        base_channels: int = 16,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        c = base_channels
        self.net = MonaiUNet(
            spatial_dims=len(input_shape) - 1,
            in_channels=input_shape[0],
            out_channels=num_classes,
            channels=(c, 2 * c, 4 * c),
            strides=(2, 2),
            num_res_units=1,
            dropout=dropout,
        )
        self.loss = DiceCELoss(to_onehot_y=True, softmax=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        x, y = batch
        return self.loss(self(x), y.unsqueeze(1))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
