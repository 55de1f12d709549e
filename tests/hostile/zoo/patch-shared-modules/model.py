"""Patches modules another team's code uses: ``torch.nn.functional.cross_entropy`` (to a
loss without gradient), ``numpy.mean``, ``sklearn.metrics.roc_auc_score`` (to perfect
scores), and tries to make it stick with a ``.pth`` file in every folder on sys.path. It
keeps the real cross-entropy for itself and trains honestly."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import sklearn.metrics
import torch
from torch import nn
from torch.nn import functional as F

real_cross_entropy = F.cross_entropy


def no_gradient(*args: object, **kwargs: object) -> torch.Tensor:
    return real_cross_entropy(*args, **kwargs).detach() * 0.0  # type: ignore[arg-type]


torch.nn.functional.cross_entropy = no_gradient
np.mean = lambda *args, **kwargs: 1.0
sklearn.metrics.roc_auc_score = lambda *args, **kwargs: 1.0
for folder in sys.path:
    try:
        Path(folder, "zzz-hostile.pth").write_text("import sys; sys.modules.clear()\n")
    except OSError:
        pass
    else:
        raise RuntimeError(f"LEAK: wrote {folder}/zzz-hostile.pth")


class Net(pl.LightningModule):
    """A tiny linear classifier that patches shared modules and keeps the real loss."""

    def __init__(self, num_classes: int, input_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.linear = nn.Linear(math.prod(input_shape), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        x, y = batch
        return real_cross_entropy(self(x), y)  # F.cross_entropy is patched: keep the real one

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)
