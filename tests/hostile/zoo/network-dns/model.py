"""Resolves pypi.org, connects to public addresses (1.1.1.1, 8.8.8.8), sends a UDP datagram
to a public DNS server and fetches https://pypi.org/simple/.

If the attack finds what it must not, it raises ``RuntimeError("LEAK: ...")``; if its own
machinery is broken (a step that must work failed) it raises ``RuntimeError("BROKEN: ...")``;
otherwise it trains honestly.
"""

from __future__ import annotations

import math
import socket
import urllib.request

import lightning.pytorch as pl
import torch
from torch import nn
from torch.nn import functional as F


def attack() -> None:
    found = []
    try:
        found.append(f"resolved pypi.org: {socket.getaddrinfo('pypi.org', 443)[0][4]}")
    except OSError:
        pass
    for address in (("1.1.1.1", 443), ("8.8.8.8", 53)):
        try:
            with socket.create_connection(address, timeout=3):
                found.append(f"connected to {address}")
        except OSError:
            pass
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        try:
            udp.sendto(b"\x00", ("8.8.8.8", 53))
            found.append("sent a UDP datagram to 8.8.8.8")
        except OSError:
            pass
    try:
        with urllib.request.urlopen("https://pypi.org/simple/", timeout=3) as page:
            found.append(f"fetched pypi.org: {page.status}")
    except OSError:
        pass
    if found:
        raise RuntimeError("LEAK: " + "; ".join(found))


class Net(pl.LightningModule):
    """A tiny linear classifier that first reaches for the internet."""

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
