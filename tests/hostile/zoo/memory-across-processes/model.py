"""Spreads memory over processes, each under its own address-space limit: it forks six
helpers that each write 500 MB and hold it until all six hold theirs (3 GB in all, over the
2 GiB the task allows) or one of them is killed. If all six held it, it raises ``LEAK``; if one
was killed, an error saying so. It never sleeps longer than it must: the case's time is the
kernel's, not a fixed wait's."""

from __future__ import annotations

import math
import os
import signal
import time

import lightning.pytorch as pl
import torch
from torch import nn
from torch.nn import functional as F


def hoard_across_processes() -> None:
    ready_r, ready_w = os.pipe()
    helpers = []
    for _ in range(6):
        pid = os.fork()
        if pid == 0:
            try:
                os.close(ready_r)
                hoard = b"\x01" * (500 * 2**20)
                os.write(ready_w, b"+")
                signal.pause()  # held until the parent ends it
                del hoard
            finally:
                os._exit(0)
        helpers.append(pid)
    os.close(ready_w)
    os.set_blocking(ready_r, False)
    held, killed, deadline = 0, [], time.monotonic() + 60
    while held < len(helpers) and not killed and time.monotonic() < deadline:
        try:
            held += len(os.read(ready_r, 16))
        except BlockingIOError:
            pass
        for pid in helpers:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done and os.WIFSIGNALED(status):
                killed.append(os.WTERMSIG(status))
        time.sleep(0.02)
    for pid in helpers:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
    if not killed:
        raise RuntimeError(f"LEAK: {held} of six processes held 500 MB each and none was stopped")
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
