"""The limits a sandbox runs under: part of a task's budget, the same for every submission.

Each limit is enforced from outside the sandboxed process (rlimits set before it starts, a cgroup
where the machine lets the platform create one, deadlines kept by the supervisor), never
promised by the submitted program.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SandboxLimits(BaseModel):
    """Resource and wall-clock limits of one sandbox (``budget.limits`` in ``task.yaml``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    memory_mb: int = Field(4096, ge=256, description="address space and cgroup memory, MiB")
    processes: int = Field(64, ge=4, description="processes and threads in the sandbox")
    open_files: int = Field(256, ge=32, description="open file descriptors per process")
    file_size_mb: int = Field(512, ge=1, description="largest file the sandbox may write, MiB")
    scratch_mb: int = Field(1024, ge=16, description="all files in the scratch folder, MiB")
    scratch_entries: int = Field(
        10_000, ge=100, description="files, folders and links in the scratch folder"
    )
    tmp_mb: int = Field(256, ge=16, description="the in-memory /tmp and /dev/shm, MiB each")
    output_kb: int = Field(1024, ge=16, description="stdout and stderr per phase, KiB")
    import_s: float = Field(120.0, gt=0, description="import and construction of the model")
    epoch_s: float = Field(600.0, gt=0, description="one training epoch with its validation")
    predict_s: float = Field(300.0, gt=0, description="one prediction of all inputs")
    start_s: float = Field(120.0, gt=0, description="start of the sandbox (imports torch)")
