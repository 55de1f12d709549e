"""A submission that looks for data it must not have, for tests of the trust boundary.

In its first ``training_step`` (the task's data is loaded by then) it computes the SHA-256 of
every numeric array and tensor it can reach through the garbage collector and of every ``.npy``
file it can list, compares them with the digests the test gave it, and raises an error whose
text reports which it found and the names of its environment variables. The dry run fails with
that report; a test parses it: the training targets must be found (the scan works), validation
and test ground truth never.
"""

from __future__ import annotations

import hashlib
import json
import re

import numpy as np
import numpy.typing as npt

SOURCE = """\
import gc, hashlib, json, os, sys
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
import lightning.pytorch as pl

TARGETS = {targets!r}
KIND = {kind!r}


def _digest(a):
    return hashlib.sha256(np.ascontiguousarray(a, dtype=np.float64).tobytes()).hexdigest()


def _arrays():
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
    skip = ("/proc", "/sys", "/usr", "/dev", sys.prefix, sys.base_prefix)
    for top in ("/", os.getcwd()):
        for root, _, files in os.walk(top):
            if root.startswith(skip):
                continue
            for name in files:
                if name.endswith(".npy"):
                    try:
                        a = np.load(os.path.join(root, name), allow_pickle=False)
                    except Exception:
                        continue
                    if a.size > 1 and a.dtype.kind in "iufb":
                        seen[id(a)] = a
    return seen.values()


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

    def forward(self, x):
        return self.head(x)

    def training_step(self, batch, batch_idx):
        digests = {{_digest(a) for a in _arrays()}}
        found = sorted(name for name, d in TARGETS.items() if d in digests)
        report = {{"found": found, "env": sorted(os.environ)}}
        raise RuntimeError("SPY-REPORT " + json.dumps(report) + " END")

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)
"""

YAML = """\
name: spy
entry_point: model.py:Spy
search_space:
  lr: {type: float, low: 0.001, high: 0.1}
"""


def digest(array: npt.NDArray[np.generic]) -> str:
    """The digest the spy computes for an array."""
    return hashlib.sha256(np.ascontiguousarray(array, dtype=np.float64).tobytes()).hexdigest()


def spy_source(targets: dict[str, npt.NDArray[np.generic]], kind: str) -> str:
    """The spy's model.py, looking for ``targets`` (name -> array), for a task of ``kind``."""
    return SOURCE.format(targets={k: digest(v) for k, v in targets.items()}, kind=kind)


def spy_report(message: str) -> dict[str, list[str]]:
    """The spy's report (``found`` target names, ``env`` variable names) from an error text."""
    match = re.search(r"SPY-REPORT (\{.*?\}) END", message)
    assert match is not None, message
    report: dict[str, list[str]] = json.loads(match.group(1))
    return report
