"""Writes into the platform's state by absolute path: appends to the leaderboard database and
the task cache, creates files in MEDARENA_HOME, the cache and the artifacts, changes modes
and times (the test compares every file's hash before and after).

If the attack finds what it must not, it raises ``RuntimeError("LEAK: ...")``; if its own
machinery is broken (a step that must work failed) it raises ``RuntimeError("BROKEN: ...")``;
otherwise it trains honestly.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import lightning.pytorch as pl
import torch
from torch import nn
from torch.nn import functional as F

PARAMS: dict = {}  # what the attack looks for; tests/hostile/test_zoo.py writes it


def attack() -> None:
    Path("/scratch/probe").write_bytes(b"ok")  # raises if even /scratch is not writable
    done = []
    for path in PARAMS["state_files"]:
        for how in ("append", "chmod", "utime", "truncate"):
            try:
                if how == "append":
                    with open(path, "ab") as f:
                        f.write(b"pwned")
                elif how == "chmod":
                    os.chmod(path, 0o777)
                elif how == "utime":
                    os.utime(path, (0, 0))
                else:
                    os.truncate(path, 0)
                done.append(f"{how} {path}")
            except OSError:
                pass
    for folder in (PARAMS["home"], PARAMS["cache"], PARAMS["artifacts"]):
        try:
            Path(folder, "pwned.npz").write_bytes(b"pwned")
            done.append(f"created {folder}/pwned.npz")
        except OSError:
            pass
    if done:
        raise RuntimeError("LEAK: " + "; ".join(done))


class Net(pl.LightningModule):
    """A tiny linear classifier that first writes into the platform's state."""

    def __init__(self, num_classes: int, input_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.linear = nn.Linear(math.prod(input_shape), num_classes)
        attack()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(self(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)
