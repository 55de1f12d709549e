"""The boring submission: one linear LightningModule that trains in about a second on CPU."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

BORING_FILE = "boring.py"
BORING_CLASS = "Boring"

BORING_MODEL = '''\
"""The boring submission (medarena.testing): a linear classifier on the flattened input."""

import math

import lightning.pytorch as pl
import torch
from torch import nn
from torch.nn import functional as F


class Boring(pl.LightningModule):
    def __init__(self, num_classes, input_shape, lr=0.01):
        super().__init__()
        self.save_hyperparameters()
        self.linear = nn.Linear(math.prod(input_shape), num_classes)

    def forward(self, x):
        return self.linear(x.flatten(1))

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
'''
"""The source of ``boring.py``: a classifier for any classification task (``input_shape`` of
any rank), searched over ``lr`` (Adam's learning rate)."""

BORING_SEARCH_SPACE: dict[str, dict[str, Any]] = {
    "lr": {"type": "float", "low": 0.001, "high": 0.1, "log": True}
}


def write_boring_submission(
    folder: Path,
    *,
    name: str = "boring",
    variant: str | None = None,
    entry_class: str = BORING_CLASS,
    search_space: Mapping[str, Mapping[str, Any]] | None = None,
) -> Path:
    """Write the boring submission into ``folder`` (created; it must not hold one already) and
    return it, ready for :func:`medarena.submissions.load_submission` or ``medarena submit``.

    The folder holds ``submission.yaml`` and ``boring.py`` (:data:`BORING_MODEL`). A *variant*
    is the source of a ``model.py`` next to it (dedented) that builds on the boring model, for
    tests that need a model to be slow, to fail, to misbehave::

        write_boring_submission(folder, variant='''
            import time
            from boring import Boring

            class Slow(Boring):
                def training_step(self, batch, batch_idx):
                    time.sleep(0.05)
                    return super().training_step(batch, batch_idx)
        ''', entry_class="Slow")

    The entry point is then ``model.py:<entry_class>``, else ``boring.py:Boring``.
    ``search_space`` replaces :data:`BORING_SEARCH_SPACE` (``{}`` for none).
    """
    folder.mkdir(parents=True, exist_ok=True)
    if (folder / "submission.yaml").exists():
        raise FileExistsError(f"{folder} already holds a submission")
    (folder / BORING_FILE).write_text(BORING_MODEL, encoding="utf-8")
    entry = f"{BORING_FILE}:{entry_class}"
    if variant is not None:
        (folder / "model.py").write_text(textwrap.dedent(variant).lstrip("\n"), encoding="utf-8")
        entry = f"model.py:{entry_class}"
    space = BORING_SEARCH_SPACE if search_space is None else search_space
    spec = {
        "name": name,
        "description": "The boring submission of medarena.testing",
        "entry_point": entry,
        "search_space": {key: dict(value) for key, value in space.items()},
    }
    (folder / "submission.yaml").write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return folder
