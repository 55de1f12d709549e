"""The baseline the sandbox is measured against: a trial run in this process, unsandboxed.

The same work as a sandboxed trial (build the submitted model, Lightning fit, validation logits
after every epoch decoded and scored with the task's kind, patience, best weights) with no
sandbox, no fork and no channel: what trial workers did before submitted code was sandboxed.
For benchmarks only: it imports the submitted code into this process.
"""

from __future__ import annotations

import copy
import importlib.util
import logging
import math
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class InProcessResult:
    epochs: int
    best_value: float
    fit_seconds: float


def load_class(bundle: Any, folder: Path) -> type:
    """Write the bundle's files to ``folder`` and import its entry class."""
    for name, data in bundle.files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    sys.path.insert(0, str(folder))
    entry = bundle.spec.entry_point
    spec = importlib.util.spec_from_file_location("bench_submission", folder / entry.file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cls: type = getattr(module, entry.cls)
    return cls


def run_in_process(cls: type, data: Any, config: Any) -> InProcessResult:
    """One trial of ``config`` (a ``TrialConfig``) on ``data`` (``WorkerData``) in this process."""
    import lightning.pytorch as pl
    import numpy as np
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from medarena.metrics import get_metric
    from medarena.tasks.kinds import get_kind

    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    kind, info = get_kind(data.kind), get_metric(config.metrics[0])
    pl.seed_everything(config.seed, workers=False, verbose=False)
    params = {k: v for k, v in config.params.items() if k != "batch_size"}
    model = cls(num_classes=data.num_classes, input_shape=data.input_shape, **params)
    batch_size = int(config.params.get("batch_size", config.batch_size))
    train = DataLoader(
        TensorDataset(torch.from_numpy(data.train_x), torch.from_numpy(data.train_y)),
        batch_size=batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(config.seed),
    )
    state: dict[str, Any] = {"best": math.nan, "epoch": -1, "waited": 0, "weights": None}

    class Score(pl.Callback):
        def on_train_epoch_end(self, trainer: Any, module: Any) -> None:
            module.eval()
            with torch.inference_mode():
                logits = np.concatenate(
                    [module(torch.from_numpy(data.val_x[i : i + 64])).numpy()
                     for i in range(0, len(data.val_x), 64)]
                )  # fmt: skip
            module.train()
            val = data.val_reference
            predictions = kind.decode_all(logits, spacing=val.spacing, origin=val.origin)
            value = kind.validation_scores(predictions, val, config.metrics)[config.metrics[0]]
            if state["epoch"] < 0 or info.better(value, state["best"]):
                state.update(best=value, epoch=trainer.current_epoch, waited=0)
                state["weights"] = copy.deepcopy(module.state_dict())
            else:
                state["waited"] += 1
                trainer.should_stop = state["waited"] >= config.patience

    trainer = pl.Trainer(
        max_epochs=config.max_epochs, accelerator="cpu", devices=1, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        num_sanity_val_steps=0, limit_val_batches=0, callbacks=[Score()],
    )  # fmt: skip
    start = time.perf_counter()
    trainer.fit(model, train_dataloaders=train)
    return InProcessResult(trainer.current_epoch, state["best"], time.perf_counter() - start)
