"""The program that runs inside a sandbox: a zygote that forks one child per job.

Run as ``python -I -B guest.py REPLY_FD [CODE DATA OUT]`` by :mod:`medarena.sandbox.box`, never
imported by the platform (it must not import ``medarena``: the package is not visible inside the
sandbox). The zygote imports numpy, torch and Lightning once, says ``started``, then reads one
job per line on standard input and forks a child for it, so that each trial starts from the same
clean state and pays no import. Only the child imports the participant's code.

Everything this program sends is untrusted by the supervisor: JSON lines on ``REPLY_FD`` and
plain files in ``/scratch/out`` (``.npy`` arrays, ``.safetensors`` weights). It receives training
inputs and targets and validation *inputs* (``/data``), or, in an inference sandbox, the test
inputs and the weights to load; never a label it is scored on.
"""

from __future__ import annotations

import copy
import errno
import json
import math
import os
import signal
import sys
import traceback
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any

CODE = Path(sys.argv[2] if len(sys.argv) > 2 else "/code")
DATA = Path(sys.argv[3] if len(sys.argv) > 3 else "/data")
OUT = Path(sys.argv[4] if len(sys.argv) > 4 else "/scratch/out")


def send(reply: Any, **message: Any) -> None:
    reply.write(json.dumps(message) + "\n")
    reply.flush()


def receive() -> dict[str, Any]:
    line = sys.stdin.readline()
    if not line:
        raise SystemExit(0)  # the supervisor closed the channel
    message: dict[str, Any] = json.loads(line)
    return message


def user_traceback(exc: BaseException) -> str:
    """The traceback limited to the participant's own frames (files under /code)."""
    frames = [
        f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith(str(CODE))
    ]
    lines = traceback.format_list(frames) if frames else []
    text = "".join(lines) + "".join(traceback.format_exception_only(type(exc), exc))
    return text[-8000:]


class NonFiniteLoss(Exception):  # noqa: N818
    pass


class ContractError(TypeError):
    """forward()'s output breaks the contract (checked here, before it is handed over)."""


def error_kind(exc: BaseException) -> str:
    """How the supervisor names an error of the participant's code: a limit the kernel enforced
    inside the process (an allocation or a write refused), the output contract, or an
    exception of the participant's own."""
    if isinstance(exc, MemoryError):
        return "memory limit"
    if isinstance(exc, OSError) and exc.errno in (errno.EFBIG, errno.ENOSPC, errno.EDQUOT):
        return "file limit"
    if isinstance(exc, ContractError):
        return "output contract violation"
    return "exception"


def save_array(name: str, array: Any) -> str:
    """Write ``array`` as ``.npy`` under /scratch/out atomically; return its file name."""
    import numpy as np

    OUT.mkdir(exist_ok=True)
    partial = OUT / f".{name}.partial"
    with partial.open("wb") as f:
        np.save(f, np.ascontiguousarray(array), allow_pickle=False)
    partial.replace(OUT / name)
    return name


def logits(model: Any, x: Any, *, batch_size: int = 64) -> Any:
    """The model's outputs for ``x`` in evaluation mode, as one float32 array."""
    import numpy as np
    import torch

    was_training = model.training
    model.eval()
    parts = []
    with torch.inference_mode():
        for start in range(0, len(x), batch_size):
            batch = torch.from_numpy(np.array(x[start : start + batch_size], dtype=np.float32))
            out = model(batch.to(model.device))
            if not isinstance(out, torch.Tensor):
                raise ContractError(
                    f"forward() must return a torch.Tensor, got {type(out).__name__}"
                )
            parts.append(out.detach().float().cpu().numpy())
    model.train(was_training)
    return np.concatenate(parts) if parts else np.zeros((0,), dtype=np.float32)


def build(job: dict[str, Any], reply: Any) -> Any:
    """Import the participant's module, then construct the model; ``None`` after an error."""
    import importlib.util

    import lightning.pytorch as pl

    try:
        sys.path.insert(0, str(CODE))
        spec = importlib.util.spec_from_file_location("submission", CODE / job["entry_file"])
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import {job['entry_file']}")
        module = importlib.util.module_from_spec(spec)
        sys.modules["submission"] = module
        spec.loader.exec_module(module)
    except BaseException as exc:
        send(reply, event="error", kind="import", traceback=user_traceback(exc))
        return None
    try:
        cls = getattr(module, job["entry_class"])
        params = {k: v for k, v in job["params"].items() if k != "batch_size"}
        model = cls(num_classes=job["num_classes"], input_shape=tuple(job["input_shape"]), **params)
        if not isinstance(model, pl.LightningModule):
            raise TypeError(f"{job['entry_class']} must subclass lightning.pytorch.LightningModule")
    except BaseException as exc:
        send(reply, event="error", kind="interface", traceback=user_traceback(exc))
        return None
    return model


def trainer(job: dict[str, Any], **options: Any) -> Any:
    import lightning.pytorch as pl

    settings: dict[str, Any] = {
        "max_epochs": job["max_epochs"],
        "accelerator": "gpu" if job["use_gpu"] else "cpu",
        "devices": 1,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "num_sanity_val_steps": 0,
        "limit_val_batches": 0,
    }
    if job.get("time_limit_s"):
        settings["max_time"] = timedelta(seconds=job["time_limit_s"])
    settings.update(options)
    return pl.Trainer(**settings)


def loader(x: Any, y: Any, *, batch_size: int, shuffle: bool, seed: int) -> Any:
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    dataset = TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator)


def fit(job: dict[str, Any], model: Any, reply: Any) -> None:
    """Train epoch by epoch; after each, hand over validation logits and obey the supervisor."""
    import lightning.pytorch as pl
    import numpy as np
    import safetensors.torch

    train_x = np.load(DATA / "train_x.npy", mmap_mode="r", allow_pickle=False)
    train_y = np.load(DATA / "train_y.npy", mmap_mode="r", allow_pickle=False)
    val_x = np.load(DATA / "val_x.npy", mmap_mode="r", allow_pickle=False)
    batch_size = int(job["params"].get("batch_size", job["batch_size"]))
    dry = job["mode"] == "dry"

    class Handover(pl.Callback):
        def __init__(self) -> None:
            self.losses: list[float] = []
            self.best: dict[str, Any] | None = None

        def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
            self.losses = []

        def on_train_batch_end(
            self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
        ) -> None:
            loss = outputs["loss"] if isinstance(outputs, dict) else outputs
            if loss is None:
                return
            value = float(loss)
            if not math.isfinite(value):
                raise NonFiniteLoss(
                    f"training_step returned a non-finite loss ({value}) in epoch "
                    f"{trainer.current_epoch}, batch {batch_idx}"
                )
            self.losses.append(value)

        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            if dry:
                return
            name = save_array("val.npy", logits(pl_module, val_x))
            loss = sum(self.losses) / len(self.losses) if self.losses else None
            send(reply, event="epoch", epoch=trainer.current_epoch, train_loss=loss, file=name)
            answer = receive()
            if answer.get("keep"):
                self.best = copy.deepcopy(pl_module.state_dict())
            if answer.get("op") == "stop":
                trainer.should_stop = True

    handover = Handover()
    train = loader(train_x, train_y, batch_size=batch_size, shuffle=not dry, seed=job["seed"])
    options: dict[str, Any] = {"fast_dev_run": 1} if dry else {}
    trainer(job, callbacks=[handover], **options).fit(model, train_dataloaders=train)
    if dry:
        name = save_array("val.npy", logits(model, val_x[:2]))
        send(reply, event="dry", file=name)
        return
    if handover.best is None:
        send(reply, event="weights", file=None)
        return
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in handover.best.items()}
    OUT.mkdir(exist_ok=True)
    safetensors.torch.save_file(tensors, str(OUT / ".weights.partial"))
    (OUT / ".weights.partial").replace(OUT / "weights.safetensors")
    send(reply, event="weights", file="weights.safetensors")


def predict(job: dict[str, Any], model: Any, reply: Any) -> None:
    """Load the given weights and predict the inputs of this inference sandbox."""
    import numpy as np
    import safetensors.torch

    state = safetensors.torch.load_file(str(DATA / "weights.safetensors"))
    model.load_state_dict(state, strict=True)
    x = np.load(DATA / "inputs.npy", mmap_mode="r", allow_pickle=False)
    name = save_array("predictions.npy", logits(model, x))
    send(reply, event="predicted", file=name)


def child(job: dict[str, Any], reply: Any) -> None:
    """One job in a fresh child: import, build, then fit, dry-run or predict."""
    import lightning.pytorch as pl
    import torch

    torch.set_num_threads(max(1, int(job["threads"])))
    pl.seed_everything(int(job["seed"]), workers=False, verbose=False)
    model = build(job, reply)
    if model is None:
        return
    send(reply, event="ready")
    try:
        if job["mode"] == "predict":
            predict(job, model, reply)
        else:
            fit(job, model, reply)
    except NonFiniteLoss as exc:
        send(reply, event="error", kind="non-finite loss", traceback=str(exc))
    except SystemExit:
        raise  # sys.exit(): the process exits with its status, which the supervisor sees
    except BaseException as exc:
        send(reply, event="error", kind=error_kind(exc), traceback=user_traceback(exc))


def quiet() -> None:
    """Silence Lightning's banners; what matters reaches the supervisor through the channel."""
    import logging

    for name in ("lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*The given NumPy array is not writable.*")
    warnings.filterwarnings("ignore", message=".*GPU available but not used.*")


def main() -> None:
    reply = os.fdopen(int(sys.argv[1]), "w", buffering=1)
    import lightning.pytorch  # noqa: F401  (the zygote's reason to exist: import once)
    import numpy  # noqa: F401
    import safetensors.torch  # noqa: F401
    import torch  # noqa: F401

    quiet()
    # Python ignores SIGXFSZ, so a write past the file size limit would only raise EFBIG; with
    # the default action the kernel kills the process, which the supervisor sees from outside.
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
    send(reply, event="started")
    while True:
        job = receive()
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                child(job, reply)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
            except BaseException:
                code = 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        send(
            reply,
            event="exit",
            code=os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
            signal=os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
        )


if __name__ == "__main__":
    main()
