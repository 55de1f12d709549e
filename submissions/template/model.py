"""The submission contract, by example.

The platform builds ``Net(num_classes=..., input_shape=(channels, height, width), **params)`` with
one value for every entry of the search space, fits it with Lightning on the training cases, and
after every epoch scores ``forward`` on the validation cases:

- ``forward(x)`` returns logits of shape ``(batch, num_classes)``; the platform applies softmax;
- ``training_step`` returns the loss; ``configure_optimizers`` returns the optimizer;
- the platform owns validation, early stopping and checkpoints: no validation_step is needed.
"""

from __future__ import annotations

import math

import lightning.pytorch as pl
import torch
from torch import nn
from torch.nn import functional as F


class Net(pl.LightningModule):
    def __init__(
        self, num_classes: int, input_shape: tuple[int, ...], lr: float = 1e-3, hidden: int = 128
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.mlp = nn.Sequential(
            nn.Flatten(),
            nn.Linear(math.prod(input_shape), hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x)

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(self(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
