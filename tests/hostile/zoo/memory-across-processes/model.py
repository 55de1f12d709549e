"""Spreads memory over processes, each under its own address-space limit: it forks six
helpers that each write 500 MB and hold it for a while (3 GB in all, over the 2 GiB the
task allows). If none of them is stopped it raises ``LEAK``; if one was killed it raises
an error saying so."""

from __future__ import annotations

import math
import os
import time

import lightning.pytorch as pl
import torch
from torch import nn
from torch.nn import functional as F


def hoard_across_processes() -> None:
    helpers = []
    for _ in range(6):
        pid = os.fork()
        if pid == 0:
            try:
                hoard = b"\x01" * (500 * 2**20)
                time.sleep(3)
                del hoard
            finally:
                os._exit(0)
        helpers.append(pid)
    killed = []
    for pid in helpers:
        _, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status):
            killed.append(os.WTERMSIG(status))
    if not killed:
        raise RuntimeError("LEAK: six processes held 3 GB and none was stopped")
    raise RuntimeError(f"helpers were killed by signals {killed}")


class Net(pl.LightningModule):
    """A tiny linear classifier that hoards memory in helpers."""

    def __init__(self, num_classes: int, input_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.linear = nn.Linear(math.prod(input_shape), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        hoard_across_processes()
        x, y = batch
        return F.cross_entropy(self(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)
