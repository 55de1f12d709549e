"""Imports the platform's own package (``medarena``, ``medarena_leaderboard``), also after
putting the repository's platform folder on sys.path, and looks for it on every path.

If the attack finds what it must not, it raises ``RuntimeError("LEAK: ...")``; if its own
machinery is broken (a step that must work failed) it raises ``RuntimeError("BROKEN: ...")``;
otherwise it trains honestly.
"""

from __future__ import annotations

import importlib
import math
import sys
from pathlib import Path

import lightning.pytorch as pl
import torch
from torch import nn
from torch.nn import functional as F

PARAMS: dict = {}  # what the attack looks for; tests/hostile/test_zoo.py writes it


def attack() -> None:
    found = []
    for attempt in ("as installed", "from the repository"):
        if attempt == "from the repository":
            sys.path.insert(0, PARAMS["platform"])
            sys.path.insert(0, str(Path(PARAMS["platform"]).parent / "leaderboard"))
        for package in ("medarena", "medarena_leaderboard"):
            try:
                module = importlib.import_module(package)
            except ImportError:
                continue
            found.append(f"imported {package} {attempt} from {module.__file__}")
    for entry in sys.path:
        for package in ("medarena", "medarena_leaderboard"):
            if Path(entry, package, "__init__.py").exists():
                found.append(f"{entry}/{package} is readable")
    if found:
        raise RuntimeError("LEAK: " + "; ".join(found))


class Net(pl.LightningModule):
    """A tiny linear classifier that first imports the platform."""

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
