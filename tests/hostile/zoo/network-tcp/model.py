"""Opens TCP connections to PostgreSQL (127.0.0.1:5432), Redis (6379), MariaDB (3306) and a
listener the test runs, on the loopback and the machine's own address, and Unix sockets of
PostgreSQL and Ray. A connection inside its own namespace (its loopback) must work.

If the attack finds what it must not, it raises ``RuntimeError("LEAK: ...")``; if its own
machinery is broken (a step that must work failed) it raises ``RuntimeError("BROKEN: ...")``;
otherwise it trains honestly.
"""

from __future__ import annotations

import glob
import math
import socket

import lightning.pytorch as pl
import torch
from torch import nn
from torch.nn import functional as F

PARAMS: dict = {}  # what the attack looks for; tests/hostile/test_zoo.py writes it


def attack() -> None:
    with socket.socket() as server:  # the sandbox's own loopback works: sockets are not broken
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname(), timeout=2):
            pass
    found = []
    for host in PARAMS["hosts"]:
        for port in PARAMS["ports"]:
            try:
                with socket.create_connection((host, port), timeout=2):
                    found.append(f"connected to {host}:{port}")
            except OSError:
                pass
    paths = [
        "/var/run/postgresql/.s.PGSQL.5432",
        "/run/postgresql/.s.PGSQL.5432",
        "/tmp/.s.PGSQL.5432",
        *glob.glob("/tmp/ray/session_*/sockets/*"),
    ]
    for path in paths:
        with socket.socket(socket.AF_UNIX) as unix:
            try:
                unix.connect(path)
                found.append(f"connected to {path}")
            except OSError:
                pass
    if found:
        raise RuntimeError("LEAK: " + "; ".join(found))


class Net(pl.LightningModule):
    """A tiny linear classifier that first connects to the machine's databases."""

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
