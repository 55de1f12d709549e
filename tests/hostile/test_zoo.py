"""The hostile zoo: submissions that attack the platform, run through its real components.

Every folder under ``zoo/`` is a real submission (``submission.yaml`` and ``model.py``): a tiny
linear classifier plus one attack (see ``README.md``). Most run directly against a
:class:`~medarena.execution.supervisor.Supervisor` (one per case, two cases at a time) on a tiny
synthetic task whose sandbox limits are small; each test then asserts the case's final state (the
:class:`~medarena.sandbox.Failure` kind and a pattern on the message) and that nothing outside
was harmed. Attacks that would "succeed" are detectable: one that finds what it must not raises
``RuntimeError("LEAK: ...")``; one that fails trains honestly, and its trial must end normally.
A few go end to end through the queue (:meth:`Arena.enqueue` and :meth:`Arena.work` on Ray)
beside honest submissions, which must score what they score alone. Package and YAML attacks go
through :func:`medarena.submissions.load_submission`. After every test no sandbox process of this
test process may be left (compared through ``/proc``).
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import itertools
import json
import os
import re
import shutil
import socket
import stat
import sys
import tempfile
import threading
import time
import traceback
import uuid
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import arena_config
from medarena.exceptions import SubmissionError
from medarena.execution import TrialJob
from medarena.execution.supervisor import Supervisor, TrialConfig, TrialOutcome
from medarena.sandbox import Failure, sandbox_support
from medarena.submissions import SubmissionBundle, load_submission
from medarena.tasks import TaskCatalogue, TaskSpec, load_task_data
from medarena.tasks.data import WorkerData
from medarena.tuning.jobs import base_config

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

HERE = Path(__file__).resolve().parent
ZOO = HERE / "zoo"
REPO = HERE.parents[1]
TASK_NAME = "hostile-tiny"
TASK = f"""\
name: {TASK_NAME}
title: A tiny synthetic task for the hostile zoo
kind: classification
version: 1
classes: [normal, cyst, hyperdense lesion, metastases]
dataset:
  reader: synthetic-ct-slices
  params: {{n_cases: 200, image_size: 16, noise_hu: 15, seed: 3}}
split: {{method: stratified, train: 0.5, val: 0.25, test: 0.25, seed: 1}}
metrics: {{primary: auc, report: [accuracy]}}
budget:
  trials: 1
  max_epochs: 2
  patience: 2
  batch_size: 32
  cpus_per_trial: 1
  seed: 0
  limits:
    memory_mb: 2048
    processes: 32
    open_files: 256
    file_size_mb: 16
    scratch_mb: 64
    scratch_entries: 1000
    tmp_mb: 32
    output_kb: 256
    import_s: 8
    epoch_s: 10
    predict_s: 10
    start_s: 120
"""
PARAMS_LINE = "PARAMS: dict = {}  # what the attack looks for; tests/hostile/test_zoo.py writes it"
LANES = 2
"""Cases run two at a time (the machine has two cores; most of a case is importing torch)."""
SETTLE_S = 15.0
"""How long killed sandbox processes may take to disappear from /proc."""
PR_SET_CHILD_SUBREAPER = 36


# The cases


@dataclass(frozen=True)
class Case:
    """One zoo folder run against a supervisor, and what must come of it.

    ``mode``: ``dry`` (the dry run), ``trial`` (a trial of ``epochs`` epochs) or ``predict`` (a
    trial, then the inference sandbox on the test inputs). ``failure`` is the expected
    :class:`Failure` ('' when the run must end normally) and ``message`` a pattern its message
    must match from the start. ``then_honest``: the same supervisor then runs the honest control,
    which must get exactly what it gets alone.
    """

    name: str
    mode: str
    failure: str = ""
    message: str = ""
    epochs: int = 1
    then_honest: bool = False
    predict_failure: str = ""
    predict_message: str = ""
    needs: str = ""
    """A cgroup controller without which the case must not run (``pids``: a fork bomb would
    take the machine; ``memory``)."""
    limits: dict[str, float] = field(default_factory=dict)
    """Limits of the zoo task this case replaces (a case about one limit must not end at
    another merely because the machine is slow)."""


F = Failure
IMPORT_LIMIT = "the limit is 8 s"
EPOCH_LIMIT = "the limit is 10 s"
KILLED_ZYGOTE = r"exited in epoch 0: the sandbox exited with status 137$"
"""A sandbox whose zygote was killed: bubblewrap ends with it (128 + SIGKILL)."""

CASES = [
    # Controls: what honest models get alone.
    Case("honest-linear", "trial"),
    Case("honest-constant", "trial"),
    # The trust boundary: each attack finds nothing, and the submission trains normally.
    Case("proc-environ", "dry"),
    Case("read-state-files", "dry"),
    Case("write-state-files", "dry"),
    Case("import-medarena", "dry"),
    Case("regenerate-task", "dry"),
    Case("network-tcp", "dry"),
    Case("network-dns", "dry"),
    Case("ptrace-proc-mem", "dry"),
    Case("ctypes-namespaces", "dry"),
    Case("kernel-interfaces", "dry"),
    Case("write-code-data", "dry", then_honest=True),
    Case("lingering-daemon", "trial"),
    Case("patch-shared-modules", "trial", then_honest=True),
    # Killing: the sandbox dies with its zygote; the supervisor runs the next one normally.
    Case("kill-parent", "trial", F.EXITED, KILLED_ZYGOTE, then_honest=True),
    Case("kill-all", "trial", F.EXITED, KILLED_ZYGOTE, then_honest=True),
    # The channel and the files a sandbox hands over.
    Case(
        "fake-epoch-messages", "trial", F.PROTOCOL,
        r"protocol violation in epoch 2: an epoch past the end of training \(the budget is 2 "
        r"epochs, and training was told to stop\)$",
        epochs=2,
    ),
    Case("fake-val-file", "trial", epochs=2),
    Case(
        "pickle-val", "dry", F.OUTPUT_CONTRACT,
        r"output contract violation in dry run: forward\(\)'s output is not a plain \.npy "
        r"array: Object arrays cannot be loaded when allow_pickle=False$",
    ),
    Case(
        "symlink-val", "dry", F.OUTPUT_CONTRACT,
        r"output contract violation in dry run: the output val\.npy is a symbolic link$",
    ),
    Case(
        "symlink-out-dir", "dry", F.OUTPUT_CONTRACT,
        r"output contract violation in dry run: the output folder is a symbolic link$",
    ),
    Case(
        "fifo-val", "dry", F.OUTPUT_CONTRACT,
        r"output contract violation in dry run: the output val\.npy is not a regular file$",
    ),
    Case(
        "channel-flood", "dry", F.PROTOCOL,
        r"protocol violation in import: a message longer than 64 KiB",
    ),
    Case(
        "channel-garbage", "dry", F.PROTOCOL,
        r"protocol violation in import: a message that is not JSON",
    ),
    Case("scratch-churn", "trial", epochs=8),
    # Limits.
    Case("busy-import", "dry", F.TIME_LIMIT, rf"time limit in import: {IMPORT_LIMIT}$"),
    Case("busy-init", "dry", F.TIME_LIMIT, rf"time limit in import: {IMPORT_LIMIT}$"),
    Case("busy-training-step", "dry", F.TIME_LIMIT, rf"time limit in dry run: {EPOCH_LIMIT}$"),
    Case(
        "busy-forward-validation", "trial", F.TIME_LIMIT,
        rf"time limit in epoch 0: {EPOCH_LIMIT}$",
    ),
    Case(
        "busy-forward-test", "predict",
        predict_failure=F.TIME_LIMIT,
        predict_message=r"time limit while predicting the test inputs \(details are withheld: "
        r"they could carry test data\); the same code passed on the validation inputs$",
    ),
    Case(
        "memory-bytearray", "dry", F.MEMORY_LIMIT,
        r"memory limit in dry run: .*bytearray\(10\*\*10\).*MemoryError",
    ),
    Case(
        "memory-growing-lists", "dry", F.MEMORY_LIMIT,
        r"memory limit in dry run: .*hoard\.append.*MemoryError",
    ),
    Case(
        "memory-across-processes", "dry", F.MEMORY_LIMIT,
        r"memory limit in dry run: .*(RuntimeError: helpers were killed by signals \[9|"
        r"the process was killed by signal 9|killed at the memory limit)",
        needs="memory",
        # Writing the 1.5 GB that reach the limit took 3 to 6 s of one CPU here, and past 10 s
        # in a CI run with the other lane busy: the case stops at the first kill, not the limit.
        limits={"epoch_s": 30.0},
    ),
    Case(
        "fork-bomb-os", "dry", F.PROCESS_LIMIT,
        r"process limit in dry run: .*BlockingIOError: \[Errno 11\]",
        needs="pids",
    ),
    Case(
        "fork-bomb-spinning", "dry", F.PROCESS_LIMIT,
        r"process limit in dry run: it reached its limit of 32 processes, then ran past the "
        r"time limit \(the limit is 10 s\)$",
        needs="pids",
    ),
    Case(
        "spawn-bomb-multiprocessing", "dry", F.PROCESS_LIMIT,
        r"process limit in dry run: .*BlockingIOError: \[Errno 11\]",
        needs="pids",
    ),
    Case(
        "spawn-bomb-subprocess", "dry", F.PROCESS_LIMIT,
        r"process limit in dry run: .*BlockingIOError: \[Errno 11\]",
        needs="pids",
    ),
    Case(
        "huge-file-scratch", "dry", F.FILE_LIMIT,
        r"file limit in dry run: a file grew past 16 MiB",
    ),
    Case("huge-file-tmp", "dry", F.FILE_LIMIT, r"file limit in dry run: a file grew past 16 MiB"),
    Case("fill-scratch", "trial", F.FILE_LIMIT, r"file limit in epoch 0: scratch over 64 MiB$"),
    Case(
        "fill-scratch-and-wait", "trial", F.FILE_LIMIT,
        r"file limit in epoch 0: scratch over 64 MiB$",
    ),
    Case(
        "many-scratch-entries", "trial", F.FILE_LIMIT,
        r"file limit in epoch 0: scratch holds more than 1000 files and folders$",
    ),
    Case(
        "fill-scratch-dry-run", "dry", F.FILE_LIMIT,
        r"file limit in dry run: scratch over 64 MiB$",
    ),
    Case(
        "fill-tmp", "dry", F.FILE_LIMIT,
        r"file limit in dry run: .*No space left on device",
    ),
    Case(
        "fill-dev-shm", "dry", F.FILE_LIMIT,
        r"file limit in dry run: .*No space left on device",
    ),
    Case(
        "print-megabytes", "dry", F.TOO_MUCH_OUTPUT,
        r"too much output in dry run: \d+ KiB printed; the limit is 256 KiB per phase",
    ),
    Case(
        "os-exit-mid-epoch", "trial", F.EXITED,
        r"exited in epoch 0: the process exited with status 3 before it finished",
    ),
    Case(
        "sys-exit-mid-epoch", "trial", F.EXITED,
        r"exited in epoch 0: the process exited with status 3 before it finished",
    ),
    # Broken submissions.
    Case(
        "syntax-error-at-compile", "dry", F.IMPORT_ERROR,
        r"import error in import: .*SyntaxError: 'return' outside function",
    ),
    Case(
        "import-error", "dry", F.IMPORT_ERROR,
        r"import error in import: .*ModuleNotFoundError: No module named 'nonexistent_pkg'",
    ),
    Case(
        "wrong-output-shape", "dry", F.OUTPUT_CONTRACT,
        r"output contract violation in dry run: forward\(\) must return logits of shape "
        r"\(batch, num_classes\) = \(2, 4\), got \(2, 2\)",
    ),
    Case(
        "nan-loss", "dry", F.NON_FINITE_LOSS,
        r"non-finite loss in dry run: training_step returned a non-finite loss \(nan\) in "
        r"epoch 0, batch 0",
    ),
    Case(
        "nan-logits", "dry", F.OUTPUT_CONTRACT,
        r"output contract violation in dry run: forward\(\) returned non-finite values",
    ),
    Case(
        "non-tensor-forward", "dry", F.OUTPUT_CONTRACT,
        r"output contract violation in dry run: .*forward\(\) must return a torch\.Tensor, "
        r"got list",
    ),
    Case(
        "not-lightning-module", "dry", F.INTERFACE_ERROR,
        r"interface error in import: .*Net must subclass lightning\.pytorch\.LightningModule",
    ),
]  # fmt: skip
CASES_BY_NAME = {case.name: case for case in CASES}
CONTROLS = ("honest-linear", "honest-constant")
SLOW_FIRST = (
    "fork-bomb-spinning", "busy-forward-validation", "busy-forward-test", "busy-training-step",
    "busy-import", "busy-init", "scratch-churn", "memory-across-processes",
)  # fmt: skip
"""Started first, so that the two lanes end together."""


# Processes: which sandboxes this test process started, and which outlived their box.


def _process_table() -> dict[int, tuple[int, str, list[str]]]:
    """Every process: pid -> (parent pid, state, argv)."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        table[int(entry.name)] = (
            int(fields[1]),
            fields[0],
            [a.decode("utf-8", "replace") for a in argv if a],
        )
    return table


def _is_launcher(argv: list[str]) -> bool:
    """bubblewrap starting a guest (or the sh/nice/prlimit that exec it)."""
    return any(Path(a).name == "bwrap" for a in argv) and "/guest/guest.py" in argv


def _box_folder(argv: list[str]) -> str | None:
    """The box's private folder, from the ``--ro-bind <folder>/code /code`` of its launcher."""
    for arg, target in itertools.pairwise(argv):
        if target == "/code" and arg.endswith("/code"):
            return arg.removesuffix("/code")
    return None


def sandbox_processes() -> dict[int, tuple[str | None, str]]:
    """Live sandbox processes that descend from this test process: pid -> (their box's folder,
    or None for a guest outside any box; command line). Orphans come back to this process
    (it is a child subreaper while the zoo runs), so nothing escapes the count."""
    table = _process_table()
    me = os.getpid()
    found: dict[int, tuple[str | None, str]] = {}
    for pid, (_, state, argv) in table.items():
        if state == "Z" or pid == me:
            continue
        chain, up = [], pid
        while up in table and up not in (0, 1, me):
            chain.append(up)
            up = table[up][0]
        if up != me:
            continue
        launchers = [p for p in chain if _is_launcher(table[p][2])]
        if launchers or any("/guest/guest.py" in a for a in argv):
            folder = _box_folder(table[launchers[0]][2]) if launchers else None
            found[pid] = (folder, " ".join(argv)[:160])
    return found


def orphaned_sandbox_processes() -> list[str]:
    """Sandbox processes whose box was closed (its folder is gone), or that have no box."""
    return [
        f"{pid}: {cmd} (box {folder})"
        for pid, (folder, cmd) in sandbox_processes().items()
        if folder is None or not Path(folder).exists()
    ]


def settle(check: Callable[[], list[str]], timeout: float = SETTLE_S) -> list[str]:
    """``check()`` once it is empty, or what it still says after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while (left := check()) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


@pytest.fixture(scope="module", autouse=True)
def subreaper() -> Iterator[None]:
    """Orphaned descendants come back to this process instead of init, so a sandbox process
    that escaped its box is still found as ours."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    yield
    libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


@pytest.fixture(autouse=True)
def no_process_left_behind() -> Iterator[None]:
    """After every test: no bwrap, guest or other sandbox process that was not there before."""
    before = set(sandbox_processes())
    yield
    left = settle(
        lambda: [
            f"{pid}: {cmd}" for pid, (_, cmd) in sandbox_processes().items() if pid not in before
        ]
    )
    assert not left, "sandbox processes left behind:\n" + "\n".join(left)


# The zoo's world: a task, the platform's state, secrets, a listener, a victim folder.


def digests(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` (relative path -> digest), modes included."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        + f":{stat.S_IMODE(p.stat().st_mode):o}"
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def write_catalogue(root: Path) -> Path:
    catalogue = root / "tasks"
    (catalogue / TASK_NAME).mkdir(parents=True)
    (catalogue / TASK_NAME / "task.yaml").write_text(TASK)
    return catalogue


class Listener:
    """A TCP server on every address of this machine that counts the connections it accepts."""

    def __init__(self) -> None:
        self.server = socket.create_server(("0.0.0.0", 0))
        self.server.settimeout(0.2)
        self.port = self.server.getsockname()[1]
        self.accepted: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, peer = self.server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted.append(f"{peer}")
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.server.close()


def own_addresses() -> list[str]:
    """This machine's non-loopback IPv4 address (the one its default route uses), if any."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # a UDP "connect" sends nothing
        except OSError:
            return []
        address = str(probe.getsockname()[0])
    return [] if address.startswith("127.") else [address]


def cgroup_controllers() -> set[str]:
    """The cgroup controllers a sandbox's limits get on this machine."""
    from medarena.sandbox import cgroups

    cgroup = cgroups.create(processes=8, memory_bytes=2**30, cpus=1)
    if cgroup is None:
        return set()
    cgroup.remove()
    return {
        "pids",
        *(["memory"] if cgroup.memory is not None else []),
        *(["cpu"] if cgroup.cpu is not None else []),
    }


@dataclass
class Zoo:
    """What every case runs against, and what the test checks afterwards."""

    root: Path
    spec: TaskSpec
    worker_data: WorkerData
    state: Path
    victim: Path
    marker: Path
    listener: Listener
    params: dict[str, Any]
    state_before: dict[str, str]
    victim_before: dict[str, str]
    canary: str
    controllers: set[str]
    """The cgroup controllers a sandbox gets here (``pids``, ``memory``)."""
    made: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def materialize(self, name: str) -> Path:
        """A copy of ``zoo/<name>`` with its ``PARAMS`` filled in (the zoo stays untouched)."""
        with self.lock:
            self.made += 1
            target = self.root / "submissions" / f"{self.made:03d}" / name
        shutil.copytree(ZOO / name, target)
        model = target / "model.py"
        text = model.read_text(encoding="utf-8")
        if PARAMS_LINE in text:
            model.write_text(text.replace(PARAMS_LINE, f"PARAMS: dict = {self.params!r}"))
        return target

    def config(self, bundle: SubmissionBundle, epochs: int) -> TrialConfig:
        return replace(base_config(bundle, self.spec, use_gpu=False), max_epochs=epochs)


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory, subreaper: None) -> Iterator[Zoo]:
    """A catalogue with the tiny task; the platform's real state folder (leaderboard database,
    task cache, artifacts) made by an arena that queued one submission; a folder standing for
    something of the supervisor's machine (the victim); a TCP listener."""
    from medarena.arena import Arena

    support = sandbox_support()
    if not support.available:
        pytest.skip(f"no sandbox on this machine: {support.reason}")
    root = tmp_path_factory.mktemp("zoo")
    catalogue = write_catalogue(root)
    state = root / "state"
    arena = Arena(arena_config(catalogue, state))
    try:
        arena.enqueue(ZOO / "honest-linear", TASK_NAME, trials=1, team="zoo")
    finally:
        arena.close(stop_cluster=False)
    spec = TaskCatalogue(catalogue).get(TASK_NAME)
    worker_data = load_task_data(spec).worker_data()
    victim = root / "victim"
    victim.mkdir()
    np.save(victim / "val.npy", np.zeros((2, 4), np.float32))  # would pass as a dry run's logits
    (victim / "leaderboard.db").write_bytes((state / "leaderboard.db").read_bytes())
    canary = f"hunter2-{uuid.uuid4().hex[:12]}"
    listener = Listener()
    state_files = sorted(p for p in state.rglob("*") if p.is_file())
    params = {
        "secrets": [canary, str(state)],
        "home": str(state),
        "cache": str(state / "cache"),
        "artifacts": str(state / "artifacts"),
        "state_files": [str(p) for p in state_files],
        "state_names": sorted(
            {"leaderboard.db", "studies.db", "mlflow.db"}
            | {p.name for p in (state / "cache").glob("*.npz")}
        ),
        "platform": str(REPO / "platform"),
        "reader": spec.dataset.reader,
        "hosts": ["127.0.0.1", *own_addresses()],
        "ports": [5432, 6379, 3306, listener.port],
        "marker": str(root / "PWNED-by-unpickling"),
        "victim": str(victim),
    }
    assert params["cache"] and any(name.endswith(".npz") for name in params["state_names"])
    yield Zoo(
        root=root,
        spec=spec,
        worker_data=worker_data,
        state=state,
        victim=victim,
        marker=Path(params["marker"]),
        listener=listener,
        params=params,
        state_before=digests(state),
        victim_before=digests(victim),
        canary=canary,
        controllers=cgroup_controllers(),
    )
    listener.close()


# Running the cases


@dataclass
class Result:
    case: Case
    outcome: TrialOutcome | None = None
    predicted: TrialOutcome | None = None
    honest: TrialOutcome | None = None
    crash: str = ""
    """An exception the platform raised instead of reporting an outcome (a platform bug)."""
    skipped: str = ""
    leftovers: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def texts(self) -> list[str]:
        """Every message the participant would see."""
        runs = (self.outcome, self.predicted, self.honest)
        return [run.error for run in runs if run is not None]


def run_case(zoo: Zoo, case: Case) -> Result:
    """Run one case on its own supervisor, then check that its boxes took their processes."""
    result = Result(case)
    if case.needs and case.needs not in zoo.controllers:
        result.skipped = f"no {case.needs} cgroup on this machine: the case is not safe to run"
        return result
    start = time.monotonic()
    supervisor = None
    try:
        bundle = load_submission(zoo.materialize(case.name))
        config = zoo.config(bundle, case.epochs)
        limits = zoo.spec.budget.limits.model_copy(update=case.limits)
        supervisor = Supervisor(zoo.worker_data, limits=limits)
        job = TrialJob(key=0, config=config, files=bundle.files, dry_run=case.mode == "dry")
        result.outcome = supervisor.run(job)
        if case.mode == "predict" and result.outcome.weights is not None:
            result.predicted = supervisor.predict(config, bundle.files, result.outcome.weights)
        if case.then_honest:
            honest = load_submission(zoo.materialize("honest-linear"))
            job = TrialJob(key=1, config=zoo.config(honest, case.epochs), files=honest.files)
            result.honest = supervisor.run(job)
    except Exception:
        result.crash = traceback.format_exc()
    finally:
        if supervisor is not None:
            supervisor.close()
    result.leftovers = settle(orphaned_sandbox_processes)
    result.seconds = time.monotonic() - start
    return result


NEEDS = {
    "test_pickle_never_unpickled": ["pickle-val"],
    "test_prediction_failure_relays_nothing": ["busy-forward-test"],
}
"""The cases a test that is not parametrized by case name needs (``test_zoo_*``: all)."""


def _selected_cases(session: pytest.Session) -> list[Case]:
    """The cases the collected tests of this module ask for (all of them in a full run)."""
    names: set[str] = set()
    for item in session.items:
        if item.path != Path(__file__):
            continue
        callspec = getattr(item, "callspec", None)
        if callspec is not None:
            names.update(v for v in callspec.params.values() if v in CASES_BY_NAME)
        function = getattr(item, "originalname", item.name)
        names.update(NEEDS.get(function, CASES_BY_NAME if function.startswith("test_zoo_") else []))
    if names:
        names.update(CONTROLS)
    order = {name: i for i, name in enumerate(SLOW_FIRST)}
    return sorted(
        (CASES_BY_NAME[name] for name in names), key=lambda c: order.get(c.name, len(order))
    )


@dataclass
class Run:
    results: dict[str, Result]
    seconds: float
    leftovers: list[str]

    def summary(self) -> dict[str, Any]:
        """Every case's measured outcome, as plain data (``MEDARENA_ZOO_REPORT=file.json``)."""

        def plain(outcome: TrialOutcome | None) -> dict[str, Any] | None:
            if outcome is None:
                return None
            fields = ("ok", "failure", "error", "epochs", "best_value", "history")
            return {name: getattr(outcome, name) for name in fields}

        cases = {
            name: {
                "seconds": round(r.seconds, 1),
                "outcome": plain(r.outcome),
                "predicted": plain(r.predicted),
                "honest": plain(r.honest),
                "crash": r.crash,
                "leftovers": r.leftovers,
            }
            for name, r in self.results.items()
        }
        return {"seconds": round(self.seconds, 1), "leftovers": self.leftovers, "cases": cases}


@pytest.fixture(scope="module")
def zoo_run(zoo: Zoo, request: pytest.FixtureRequest) -> Run:
    """Every selected case, two at a time, with the platform's secrets in this process's
    environment (the sandboxes must not see them)."""
    cases = _selected_cases(request.session)
    secrets = {
        "MEDARENA_HOME": str(zoo.state),
        "MEDARENA_CANARY_DB_URL": f"postgresql://medarena:{zoo.canary}@127.0.0.1:5432/board",
        "PGPASSWORD": zoo.canary,
    }
    saved = {name: os.environ.get(name) for name in secrets}
    os.environ.update(secrets)
    start = time.monotonic()
    try:
        with ThreadPoolExecutor(LANES, thread_name_prefix="zoo") as lanes:
            futures = {case.name: lanes.submit(run_case, zoo, case) for case in cases}
            results = {name: future.result() for name, future in futures.items()}
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    seconds = time.monotonic() - start
    run = Run(results, seconds, settle(orphaned_sandbox_processes))
    if report := os.environ.get("MEDARENA_ZOO_REPORT"):
        Path(report).write_text(json.dumps(run.summary(), indent=1))
    return run


def headline(error: str) -> str:
    """A participant's message without the end of their output that follows it."""
    return error.split("\n--- last output ---\n")[0]


def control(run: Run, name: str) -> TrialOutcome:
    outcome = run.results[name].outcome
    assert outcome is not None and outcome.ok, f"the control {name} failed: {outcome}"
    return outcome


def validation(history: list[dict[str, float]]) -> list[dict[str, float]]:
    """The validation values of a history (what the supervisor scored)."""
    return [{k: v for k, v in row.items() if k.startswith("val_")} for row in history]


# The tests


@pytest.mark.parametrize("name", [case.name for case in CASES])
def test_case(zoo_run: Run, name: str) -> None:
    """The case's final state and message are the expected ones; no LEAK, no host path in any
    message, no crash of the platform, no process outlived the case's boxes."""
    result = zoo_run.results[name]
    case = result.case
    if result.skipped:
        pytest.skip(result.skipped)
    assert not result.crash, f"the platform raised instead of reporting:\n{result.crash}"
    outcome = result.outcome
    assert outcome is not None
    for text in result.texts():
        assert "LEAK" not in text, text
        assert "BROKEN" not in text, text
        assert "medarena-box-" not in text and "medarena-supervisor-" not in text, text
    if case.failure:
        assert (outcome.ok, outcome.failure) == (False, case.failure), outcome.error
        assert re.match(case.message, headline(outcome.error), re.S), outcome.error
    else:
        assert (outcome.ok, outcome.failure, outcome.error) == (True, "", "")
        if case.mode != "dry":
            assert outcome.epochs >= case.epochs and outcome.weights is not None
            assert len(outcome.history) == outcome.epochs
    if case.predict_failure:
        assert result.predicted is not None
        assert (result.predicted.ok, result.predicted.failure) == (False, case.predict_failure)
        assert re.match(case.predict_message, headline(result.predicted.error), re.S), (
            result.predicted.error
        )
    if case.then_honest:
        assert result.honest is not None and result.honest.ok, result.honest
        assert result.honest.history == control(zoo_run, "honest-linear").history
    assert not result.leftovers, "processes outlived their box:\n" + "\n".join(result.leftovers)


def test_zoo_controls_learn(zoo_run: Run) -> None:
    """The controls: the linear model learns something, the constant one scores chance."""
    linear = control(zoo_run, "honest-linear")
    constant = control(zoo_run, "honest-constant")
    assert linear.best_value > 0.55
    assert constant.best_value == 0.5
    assert all(row["val_auc"] == 0.5 for row in constant.history)


@pytest.mark.parametrize("name", ["fake-epoch-messages", "fake-val-file"])
def test_faked_scores_are_a_constant_models(zoo_run: Run, name: str) -> None:
    """A sandbox that fakes epoch messages or its validation file gets exactly what an honest
    constant model gets: the supervisor scores the logits it reads, never a claimed score."""
    outcome = zoo_run.results[name].outcome
    assert outcome is not None and outcome.history, outcome
    constant = validation(control(zoo_run, "honest-constant").history)[0]
    assert validation(outcome.history) == [constant] * len(outcome.history)
    assert outcome.best_value == 0.5


@pytest.mark.parametrize("name", ["read-state-files", "write-state-files", "symlink-out-dir"])
def test_state_and_victim_untouched(zoo: Zoo, zoo_run: Run, name: str) -> None:
    """The platform's state folder and the victim folder hold the same files, byte for byte,
    with the same modes, after the whole zoo ran."""
    assert name in zoo_run.results
    assert digests(zoo.state) == zoo.state_before
    assert digests(zoo.victim) == zoo.victim_before


@pytest.mark.parametrize("name", ["network-tcp", "network-dns"])
def test_no_connection_reached_the_machine(zoo: Zoo, zoo_run: Run, name: str) -> None:
    assert name in zoo_run.results
    assert zoo.listener.accepted == []


def test_pickle_never_unpickled(zoo: Zoo, zoo_run: Run) -> None:
    assert "pickle-val" in zoo_run.results
    assert not zoo.marker.exists()


def test_prediction_failure_relays_nothing(zoo_run: Run) -> None:
    """A prediction that loops ends at the time limit with a message that carries neither a
    traceback nor the participant's output."""
    predicted = zoo_run.results["busy-forward-test"].predicted
    assert predicted is not None
    assert "Traceback" not in predicted.error and "/code" not in predicted.error
    assert "last output" not in predicted.error


def test_zoo_leaves_no_process(zoo_run: Run) -> None:
    """Once every supervisor is closed, no sandbox process of the zoo is left."""
    assert not zoo_run.leftovers, "\n".join(zoo_run.leftovers)
    assert not settle(lambda: [f"{pid}" for pid in sandbox_processes()])


def test_zoo_timings(zoo_run: Run) -> None:
    """Prints how long each case took (``pytest -s`` shows it); the zoo fits in minutes."""
    for name, result in sorted(zoo_run.results.items(), key=lambda kv: -kv[1].seconds):
        outcome = result.outcome
        state = "crash" if result.crash else (outcome.failure or "ok") if outcome else "?"
        print(f"{name:28s} {result.seconds:6.1f} s  {state}")
    print(f"{len(zoo_run.results)} cases in {zoo_run.seconds:.0f} s ({LANES} at a time)")
    assert zoo_run.seconds < 900  # a hang is caught earlier, by each phase's deadline


@pytest.mark.parametrize(
    "name", ["read-state-files", "import-medarena", "regenerate-task", "network-tcp"]
)
def test_attacks_find_what_is_there_outside_a_sandbox(zoo: Zoo, name: str) -> None:
    """The attacks work: run in this (unsandboxed) process, each finds what the sandbox hides
    and says LEAK, so their silence inside the sandbox means something."""
    import importlib.util

    listener = Listener()
    try:
        params = {**zoo.params, "hosts": ["127.0.0.1"], "ports": [listener.port]}
        folder = zoo.materialize(name)
        model = folder / "model.py"
        model.write_text(model.read_text().replace(repr(zoo.params), repr(params)))
        spec = importlib.util.spec_from_file_location(f"zoo_{name.replace('-', '_')}", model)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        saved = list(sys.path)
        try:
            with pytest.raises(RuntimeError, match=r"^LEAK: "):
                module.attack()
        finally:
            sys.path[:] = saved
    finally:
        listener.close()
    assert len(listener.accepted) == (1 if name == "network-tcp" else 0)
    assert digests(zoo.state) == zoo.state_before


# Packages and YAML: refused before any code runs.


def _pack(folder: Path, archive: Path, extra: Callable[[zipfile.ZipFile], None]) -> Path:
    """``folder``'s files in a zip, with ``extra`` members added first."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as package:
        extra(package)
        for path in sorted(folder.iterdir()):
            package.write(path, path.name)
    return archive


def _traversal(package: zipfile.ZipFile) -> None:
    package.writestr("../escaped.py", "print('escaped')\n")


def _deep_traversal(escape: Path) -> Callable[[zipfile.ZipFile], None]:
    def add(package: zipfile.ZipFile) -> None:
        package.writestr("../../../../../../../.." + str(escape), "print('escaped')\n")

    return add


def _symlink(package: zipfile.ZipFile) -> None:
    info = zipfile.ZipInfo("passwd")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    package.writestr(info, "/etc/passwd")


def _zeros(mib: int) -> Callable[[zipfile.ZipFile], None]:
    def add(package: zipfile.ZipFile) -> None:
        with package.open("zeros.bin", "w", force_zip64=True) as member:
            for _ in range(mib):
                member.write(bytes(2**20))

    return add


@pytest.mark.parametrize(
    ("name", "build", "message"),
    [
        ("syntax-error", None, r".*/model\.py:\d+: syntax error: "),
        (
            "yaml-alias-bomb", None,
            r".*/submission\.yaml:\d+:\d+: invalid YAML: the document expands to more than "
            r"100000 values through its anchors and aliases",
        ),
        (
            "non-utf8-yaml", None,
            r".*/submission\.yaml:3: not UTF-8 text: byte 0xe9 at byte offset \d+",
        ),
        (
            "zip-traversal", _traversal,
            r".*\.zip: member '\.\./escaped\.py': the path climbs out of the package with '\.\.'",
        ),
        (
            "zip-symlink", _symlink,
            r".*\.zip: member 'passwd': symbolic links are not allowed",
        ),
        (
            "zip-bomb", _zeros(15),
            r".*\.zip: member 'zeros\.bin': the package unpacks to more than 100 times its own "
            r"size by this member \(a zip bomb\?\)",
        ),
        (
            "zip-bomb", _zeros(200),
            r".*\.zip: member 'zeros\.bin': the file unpacks to more than 20 MiB",
        ),
    ],
)  # fmt: skip
def test_refused_before_running(
    tmp_path: Path,
    name: str,
    build: Callable[[zipfile.ZipFile], None] | None,
    message: str,
) -> None:
    """Hostile packages and YAML files are refused by ``load_submission`` with a message that
    names the file (and the member), and nothing is written outside the unpacking folder."""
    source = ZOO / name
    if build is not None:
        source = _pack(ZOO / name, tmp_path / f"{name}.zip", build)
    with pytest.raises(SubmissionError) as refused:
        load_submission(source)
    assert re.match(message, str(refused.value), re.S), str(refused.value)
    assert not Path(tempfile.gettempdir(), "escaped.py").exists()


def test_deep_traversal_writes_nothing_outside(tmp_path: Path) -> None:
    escape = Path(tempfile.gettempdir()) / f"zoo-escaped-{uuid.uuid4().hex}.py"
    archive = _pack(ZOO / "zip-traversal", tmp_path / "deep.zip", _deep_traversal(escape))
    with pytest.raises(SubmissionError, match="climbs out of the package"):
        load_submission(archive)
    assert not escape.exists()


# End to end: the queue, on Ray, hostile submissions beside honest ones.


@pytest.mark.ray
def test_queue_keeps_honest_submissions_unharmed(ray_cluster: str, tmp_path: Path) -> None:
    """Queued beside a submission that patches torch/numpy/sklearn, one that loops in its
    training step and one that kills every process it can (its own sandbox dies in its dry
    run), an honest submission scores exactly what it scores alone on the same workers; the
    store holds each one's status and error."""
    from medarena.arena import Arena

    if not sandbox_support().available:
        pytest.skip("no sandbox on this machine")
    arena = Arena(arena_config(write_catalogue(tmp_path), tmp_path / "state"))
    try:
        alone = arena.enqueue(ZOO / "honest-linear", TASK_NAME, trials=1, team="alone")
        assert arena.work(exit_when_idle=True, poll_s=0.2) == 1
        names = ("patch-shared-modules", "busy-training-step", "kill-all", "honest-linear")
        ids = {name: arena.enqueue(ZOO / name, TASK_NAME, trials=1, team=name) for name in names}
        assert arena.work(exit_when_idle=True, poll_s=0.2) == len(names)
        rows = {name: arena.store.submission(i) for name, i in ids.items()}
        states = {name: (row.status, row.error) for name, row in rows.items() if row}
        assert states["patch-shared-modules"] == ("scored", ""), states
        status, error = states["kill-all"]
        assert status == "failed", states
        assert re.search(r"exited in dry run: the sandbox exited with status 137", error), error
        assert states["honest-linear"] == ("scored", ""), states
        status, error = states["busy-training-step"]
        assert status == "failed", states
        assert re.search(rf"time limit in dry run: {EPOCH_LIMIT}", error), error

        def scores(submission_id: int) -> dict[str, tuple[float | None, ...]]:
            rows = arena.store.scores(submission_id)
            return {s.metric: (s.value, s.ci_low, s.ci_high) for s in rows}

        def trials(submission_id: int) -> list[tuple[str, float | None, int]]:
            rows = arena.store.trials(submission_id)
            return [(t.state, t.value, t.epochs) for t in rows]

        assert scores(ids["honest-linear"]) == scores(alone) != {}
        assert trials(ids["honest-linear"]) == trials(alone)
    finally:
        with contextlib.suppress(Exception):
            arena.close(stop_cluster=False)
