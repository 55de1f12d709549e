"""The GPU path: a trial configured for the GPU trains there, inside the sandbox (the NVIDIA
devices are bound in, CUDA_VISIBLE_DEVICES is passed on), and its weights predict the test
inputs. Skipped where torch sees no CUDA device (the CPU build of torch that `make install`
pins sees none)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from medarena.execution import TrialJob
from medarena.execution.supervisor import Supervisor
from medarena.sandbox import SandboxLimits
from medarena.submissions import load_submission
from medarena.tasks import TaskCatalogue, load_task_data
from medarena.testing import write_boring_submission
from medarena.tuning.jobs import base_config

pytestmark = [pytest.mark.slow, pytest.mark.gpu]

ON_GPU = """
    from boring import Boring

    class OnGpu(Boring):
        def training_step(self, batch, batch_idx):
            x, y = batch
            if not x.is_cuda:
                raise RuntimeError(f"the batch is on {x.device}, not on the GPU")
            return super().training_step(batch, batch_idx)
"""


@pytest.fixture
def cuda() -> None:
    """Skip unless torch (imported here only) sees a CUDA device."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device visible to torch")


def test_a_trial_on_the_gpu_trains_there_and_predicts(
    cuda: None, catalogue: Path, tmp_path: Path
) -> None:
    spec = TaskCatalogue(catalogue).get("tiny-ct")
    data = load_task_data(spec).worker_data()
    folder = write_boring_submission(
        tmp_path / "on-gpu", name="on-gpu", variant=ON_GPU, entry_class="OnGpu", search_space={}
    )
    bundle = load_submission(folder)
    config = replace(base_config(bundle, spec, use_gpu=True), max_epochs=2, patience=2)
    supervisor = Supervisor(data, limits=SandboxLimits(), gpu=True)
    try:
        dry = supervisor.run(TrialJob(key=-1, config=config, files=bundle.files, dry_run=True))
        assert dry.ok, dry.error
        outcome = supervisor.run(TrialJob(key=0, config=config, files=bundle.files))
        assert outcome.ok, outcome.error
        assert outcome.epochs == 2 and outcome.weights is not None
        predicted = supervisor.predict(config, bundle.files, outcome.weights)
    finally:
        supervisor.close()
    assert predicted.ok, predicted.error
    assert predicted.test_predictions is not None
