"""A submission that scans its trial worker's memory, for tests of the trust boundary.

Every time it is built (dry run and trials) it writes the SHA-256 of every numeric array and
tensor it can reach through the garbage collector, and the names of its environment variables,
to a JSON file in ``out``. A test then checks that the digest of the validation ground truth is
there (the scan works) and the test's is not, and that no credential reached the environment.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import numpy.typing as npt

SOURCE = """\
import gc, hashlib, json, os, time
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
import lightning.pytorch as pl

OUT = {out!r}
KIND = {kind!r}


def _digests():
    seen = {{}}
    for obj in gc.get_objects():
        try:
            members = object.__getattribute__(obj, "__dict__")
        except Exception:
            members = None
        extra = list(members.values()) if isinstance(members, dict) else []
        for ref in [obj, *gc.get_referents(obj), *extra]:
            if isinstance(ref, torch.Tensor):
                ref = ref.detach().numpy()
            if isinstance(ref, np.ndarray) and ref.size > 1 and ref.dtype.kind in "iufb":
                seen[id(ref)] = ref
    return [hashlib.sha256(np.ascontiguousarray(a, dtype=np.float64).tobytes()).hexdigest()
            for a in seen.values()]


class Spy(pl.LightningModule):
    def __init__(self, num_classes, input_shape, lr=0.01):
        super().__init__()
        self.save_hyperparameters()
        if KIND == "classification":
            n_inputs = int(np.prod(input_shape))
            self.head = nn.Sequential(nn.Flatten(), nn.Linear(n_inputs, num_classes))
        else:
            conv = nn.Conv3d if len(input_shape) == 4 else nn.Conv2d
            self.head = conv(input_shape[0], num_classes if KIND == "segmentation" else 1, 1)
        with open(os.path.join(OUT, f"{{os.getpid()}}-{{time.time_ns()}}.json"), "w") as f:
            json.dump({{"digests": _digests(), "env": sorted(os.environ)}}, f)

    def forward(self, x):
        return self.head(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        if KIND == "detection":
            return F.binary_cross_entropy_with_logits(self(x), y)
        return F.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)
"""

YAML = """\
name: spy
entry_point: model.py:Spy
search_space:
  lr: {type: float, low: 0.001, high: 0.1}
"""


def spy_source(out: Path, kind: str) -> str:
    """The spy's model.py, writing its reports to ``out``, for a task of ``kind``."""
    return SOURCE.format(out=str(out), kind=kind)


def digest(array: npt.NDArray[np.generic]) -> str:
    """The digest the spy computes for an array."""
    return hashlib.sha256(np.ascontiguousarray(array, dtype=np.float64).tobytes()).hexdigest()


def seen_digests(out: Path) -> tuple[int, set[str]]:
    """How many times the spy was built, and every digest it saw."""
    reports = [set(json.loads(p.read_text())["digests"]) for p in out.glob("*.json")]
    return len(reports), set().union(*reports)


def seen_environment(out: Path) -> set[str]:
    """The names of every environment variable the spy's workers had."""
    return set().union(*(set(json.loads(p.read_text())["env"]) for p in out.glob("*.json")))
