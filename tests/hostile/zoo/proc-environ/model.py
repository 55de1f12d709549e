"""Reads /proc/self/environ, every /proc/*/environ and /proc/*/cmdline, and follows every
/proc/*/cwd and /proc/*/root, looking for the platform's credentials and state folder.

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
    secrets = PARAMS["secrets"]
    mine = Path("/proc/self/environ").read_bytes()
    if b"PATH=" not in mine:
        raise RuntimeError("BROKEN: cannot read my own environment")
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        for name in ("environ", "cmdline"):
            try:
                text = (proc / name).read_bytes().decode("utf-8", "replace")
            except OSError:
                continue
            found += [f"{proc}/{name} holds {s!r}" for s in secrets if s in text]
            if name == "environ":
                found += [
                    f"{proc}/environ holds {v.split('=')[0]}"
                    for v in text.split("\0")
                    if v.startswith(("MEDARENA", "PG", "RAY_", "AWS_", "MLFLOW"))
                ]
        for link in ("cwd", "root"):
            try:
                target = os.readlink(proc / link)
                names = os.listdir(proc / link)
            except OSError:
                continue
            found += [f"{proc}/{link} -> {target}" for s in secrets if s in target]
            found += [f"{proc}/{link} lists {n}" for n in names if n in PARAMS["state_names"]]
    if found:
        raise RuntimeError("LEAK: " + "; ".join(found))


class Net(pl.LightningModule):
    """A tiny linear classifier that first reads every process's environment."""

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
