"""Opens the platform's state by the absolute paths the test gave it (MEDARENA_HOME, the
leaderboard database, the task cache .npz, the artifacts), also through /proc/*/root, and
searches every folder it can list for them.

If the attack finds what it must not, it raises ``RuntimeError("LEAK: ...")``; if its own
machinery is broken (a step that must work failed) it raises ``RuntimeError("BROKEN: ...")``;
otherwise it trains honestly.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import lightning.pytorch as pl
import torch
from torch import nn
from torch.nn import functional as F

PARAMS: dict = {}  # what the attack looks for; tests/hostile/test_zoo.py writes it


def attack() -> None:
    if not Path(sys.executable).read_bytes()[:4] == b"\x7fELF":
        raise RuntimeError("BROKEN: cannot read the Python interpreter")
    found = []
    paths = [PARAMS["home"], PARAMS["cache"], PARAMS["artifacts"], *PARAMS["state_files"]]
    roots = [""] + [f"/proc/{p}/root" for p in os.listdir("/proc") if p.isdigit()]
    for root in roots:
        for path in paths:
            try:
                if Path(root + path).is_dir():
                    found.append(f"listed {root + path}: {os.listdir(root + path)}")
                else:
                    found.append(
                        f"read {len(Path(root + path).read_bytes())} bytes of {root + path}"
                    )
            except OSError:
                pass
    if found:
        raise RuntimeError("LEAK: " + "; ".join(found))
    skip = ("/proc", "/sys", "/dev", "/usr", sys.prefix, sys.base_prefix)
    for top, folders, files in os.walk("/"):
        folders[:] = [f for f in folders if not os.path.join(top, f).startswith(skip)]
        found += [os.path.join(top, f) for f in files if f in PARAMS["state_names"]]
    if found:
        raise RuntimeError("LEAK: " + "; ".join(found))


class Net(pl.LightningModule):
    """A tiny linear classifier that first reads the platform's state."""

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
