"""The trial sandbox: runs submitted code on a worker and reports back plain values.

Everything here runs inside a trial worker process, never in the trusted process. A trial builds
the submitted LightningModule with one configuration, fits it on the training cases, scores the
validation cases after every epoch with the task's metrics, stops early after ``patience`` epochs
without improvement, restores the best epoch's weights and predicts the test inputs.
"""

from __future__ import annotations

import copy
import importlib.util
import logging
import math
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from medarena.metrics import get_metric
from medarena.tasks.kinds import get_kind
from medarena.tasks.kinds._base import Predictions

if TYPE_CHECKING:
    import lightning.pytorch as pl
    import torch

    from medarena.tasks.data import WorkerData


@dataclass(frozen=True)
class TrialConfig:
    """What one trial needs besides the data: which code, which parameters, which budget."""

    submission_sha256: str
    entry_file: str
    entry_class: str
    params: dict[str, Any]
    metrics: tuple[str, ...]
    max_epochs: int
    patience: int
    batch_size: int
    seed: int
    use_gpu: bool = False
    time_limit_s: float | None = None


@dataclass
class TrialOutcome:
    """What a trial sends back: its curve, its best score, and the test predictions if asked."""

    ok: bool
    best_value: float = math.nan
    best_epoch: int = -1
    epochs: int = 0
    fit_seconds: float = 0.0
    history: list[dict[str, float]] = field(default_factory=list)
    test_predictions: Predictions | None = None
    error: str = ""
    pruned: bool = False  # stopped early by the sweep's pruner (no test predictions then)


EpochHook = Callable[[int, dict[str, float]], bool]
"""Called after each epoch with (epoch, history row); answering true stops the trial (pruning)."""


class SubmissionCode:
    """Submitted files written to a private folder and imported once per worker."""

    def __init__(self) -> None:
        self._modules: dict[str, ModuleType] = {}
        self._root = Path(tempfile.mkdtemp(prefix="medarena-submissions-"))

    def load_class(self, sha256: str, files: dict[str, bytes], entry_file: str, cls: str) -> type:
        module = self._modules.get(sha256)
        if module is None:
            folder = self._root / sha256[:16]
            for name, data in files.items():
                target = folder / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            sys.path.insert(0, str(folder))
            module_name = f"medarena_submission_{sha256[:16]}"
            spec = importlib.util.spec_from_file_location(module_name, folder / entry_file)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            spec.loader.exec_module(module)
            self._modules[sha256] = module
        obj = getattr(module, cls)
        if not isinstance(obj, type):
            raise TypeError(f"{entry_file}:{cls} is not a class")
        return obj


def quiet_lightning() -> None:
    """Silence Lightning's banner lines; trial output is reported through the outcome."""
    import lightning.pytorch  # noqa: F401  (it sets its loggers' levels on import)

    for name in ("lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*The given NumPy array is not writable.*")


def user_traceback(exc: BaseException) -> str:
    """The traceback limited to the submitted code's frames, as a participant wants to read it."""
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if "medarena-submissions-" in f.filename or "medarena_submission_" in f.filename
    ]
    lines = traceback.format_list(frames) if frames else []
    return "".join(lines) + "".join(traceback.format_exception_only(type(exc), exc))


def _loader(
    x: npt.NDArray[np.float32], y: npt.NDArray[Any], *, batch_size: int, shuffle: bool, seed: int
) -> torch.utils.data.DataLoader[Any]:
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    dataset = TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator)


def raw_outputs(
    model: pl.LightningModule, x: npt.NDArray[np.float32], *, batch_size: int = 64
) -> list[npt.NDArray[np.float32]]:
    """The model's outputs (logits) for ``x`` in evaluation mode, one array per batch."""
    import torch

    was_training = model.training
    model.eval()
    outputs = []
    with torch.inference_mode():
        for start in range(0, len(x), batch_size):
            batch = torch.from_numpy(x[start : start + batch_size]).to(model.device)
            outputs.append(model(batch).float().cpu().numpy())
    model.train(was_training)
    return outputs


def predict(
    model: pl.LightningModule,
    data: WorkerData,
    x: npt.NDArray[np.float32],
    *,
    spacing: npt.NDArray[np.float64],
    origin: npt.NDArray[np.float64],
) -> Predictions:
    """Predictions in the task kind's form (probabilities, label maps or candidates)."""
    kind = get_kind(data.kind)
    parts, offsets, start = [], [], 0
    for logits in raw_outputs(model, x):
        stop = start + len(logits)
        parts.append(kind.decode(logits, spacing=spacing[start:stop], origin=origin[start:stop]))
        offsets.append(start)
        start = stop
    return kind.concat(parts, offsets=offsets)


def _make_scorer(
    data: WorkerData,
    config: TrialConfig,
    outcome: TrialOutcome,
    on_epoch: EpochHook | None = None,
) -> pl.Callback:
    """A callback that scores validation after each epoch and keeps the best weights."""
    import lightning.pytorch as pl

    primary = config.metrics[0]
    primary_info = get_metric(primary)
    kind = get_kind(data.kind)

    class EpochScorer(pl.Callback):
        def __init__(self) -> None:
            self.losses: list[float] = []
            self.best_state: dict[str, Any] | None = None
            self.waited = 0

        def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            self.losses = []

        def on_train_batch_end(
            self,
            trainer: pl.Trainer,
            pl_module: pl.LightningModule,
            outputs: Any,
            batch: Any,
            batch_idx: int,
        ) -> None:
            loss = outputs["loss"] if isinstance(outputs, dict) else outputs
            if loss is not None:
                self.losses.append(float(loss))

        def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            val = data.val_reference
            predictions = predict(
                pl_module, data, data.val_x, spacing=val.spacing, origin=val.origin
            )
            row = {"epoch": float(trainer.current_epoch)}
            if self.losses:
                row["train_loss"] = float(np.mean(self.losses))
            scores = kind.validation_scores(predictions, val, config.metrics)
            row.update({f"val_{name}": value for name, value in scores.items()})
            outcome.history.append(row)
            outcome.epochs = trainer.current_epoch + 1
            value = row[f"val_{primary}"]
            improved = not math.isnan(value) and (
                outcome.best_epoch < 0 or primary_info.better(value, outcome.best_value)
            )
            if improved:
                outcome.best_value, outcome.best_epoch = value, trainer.current_epoch
                self.best_state = copy.deepcopy(pl_module.state_dict())
                self.waited = 0
            else:
                self.waited += 1
                if self.waited >= config.patience:
                    trainer.should_stop = True
            if on_epoch is not None and on_epoch(trainer.current_epoch, row):
                outcome.pruned = True
                trainer.should_stop = True

    return EpochScorer()


def _trainer(config: TrialConfig, **overrides: Any) -> pl.Trainer:
    import lightning.pytorch as pl

    options: dict[str, Any] = {
        "max_epochs": config.max_epochs,
        "accelerator": "gpu" if config.use_gpu else "cpu",
        "devices": 1,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "num_sanity_val_steps": 0,
        "limit_val_batches": 0,
    }
    if config.time_limit_s is not None:
        # Lightning stops after the batch that crosses the limit; the best epoch so far counts.
        options["max_time"] = timedelta(seconds=config.time_limit_s)
    options.update(overrides)
    return pl.Trainer(**options)


def build_model(model_cls: type, data: WorkerData, params: dict[str, Any]) -> pl.LightningModule:
    """Instantiate the submitted class and check that it is a LightningModule."""
    import lightning.pytorch as pl

    model_params = {k: v for k, v in params.items() if k != "batch_size"}
    model = model_cls(num_classes=data.num_classes, input_shape=data.input_shape, **model_params)
    if not isinstance(model, pl.LightningModule):
        raise TypeError(f"{model_cls.__name__} must subclass lightning.pytorch.LightningModule")
    return model


def run_trial(
    model_cls: type,
    data: WorkerData,
    config: TrialConfig,
    *,
    predict_test: bool = True,
    on_epoch: EpochHook | None = None,
) -> TrialOutcome:
    """Fit one configuration and return its curve, best validation score and test predictions.

    Exceptions raised by the submitted code are caught and returned as a failed outcome whose
    ``error`` shows the participant's own frames.
    """
    import lightning.pytorch as pl

    outcome = TrialOutcome(ok=False)
    try:
        pl.seed_everything(config.seed, workers=False, verbose=False)
        model = build_model(model_cls, data, config.params)
        batch_size = int(config.params.get("batch_size", config.batch_size))
        train = _loader(
            data.train_x, data.train_y, batch_size=batch_size, shuffle=True, seed=config.seed
        )
        scorer = _make_scorer(data, config, outcome, on_epoch)
        start = time.perf_counter()
        _trainer(config, callbacks=[scorer]).fit(model, train_dataloaders=train)
        outcome.fit_seconds = time.perf_counter() - start
        best_state = getattr(scorer, "best_state", None)
        if best_state is None:
            raise RuntimeError(
                f"the validation metric {config.metrics[0]!r} was NaN in every epoch; "
                "check that forward() returns finite logits of shape (batch, num_classes)"
            )
        model.load_state_dict(best_state)
        if predict_test and not outcome.pruned:
            outcome.test_predictions = predict(
                model, data, data.test_x, spacing=data.test_spacing, origin=data.test_origin
            )
        outcome.ok = True
    except Exception as exc:
        outcome.error = user_traceback(exc)
    return outcome


def dry_run(model_cls: type, data: WorkerData, config: TrialConfig) -> str:
    """Build the model, fit one batch and run two cases; return '' or what went wrong."""
    import lightning.pytorch as pl

    try:
        pl.seed_everything(config.seed, workers=False, verbose=False)
        model = build_model(model_cls, data, config.params)
        batch_size = int(config.params.get("batch_size", config.batch_size))
        train = _loader(
            data.train_x, data.train_y, batch_size=batch_size, shuffle=False, seed=config.seed
        )
        _trainer(config, fast_dev_run=1).fit(model, train_dataloaders=train)
        (outputs,) = raw_outputs(model, data.val_x[:2])
    except Exception as exc:
        return user_traceback(exc)
    channels = get_kind(data.kind).output_channels(data.num_classes)
    n = min(2, len(data.val_x))
    expected = (
        (n, channels) if data.kind == "classification" else (n, channels, *data.input_shape[1:])
    )
    if outputs.shape != expected:
        what = "logits of shape (batch, num_classes)"
        if data.kind == "segmentation":
            what = "logits of shape (batch, num_classes, *spatial) at the input's resolution"
        elif data.kind == "detection":
            what = "a heatmap of logits of shape (batch, 1, *spatial) at the input's resolution"
        return f"forward() must return {what} = {expected}, got {outputs.shape}"
    if not np.all(np.isfinite(outputs)):
        return "forward() returned non-finite values (NaN or infinity) in the dry run"
    return ""
