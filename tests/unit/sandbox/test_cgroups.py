"""A sandbox's cgroup, created for real where this machine lets the platform make one."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from medarena.sandbox import cgroups

SPIN = """
import sys, time
sys.stdin.readline()  # in the cgroup now
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    pass
"""


def test_a_sandbox_cgroup_holds_its_processes_to_its_cpus() -> None:
    """A process that spins for 2 s in a cgroup of a quarter CPU gets about 0.5 s of CPU time
    (2 s on an idle core without the quota, at least 1 s on this 2-core machine however busy)."""
    cgroup = cgroups.create(processes=8, memory_bytes=2**30, cpus=0.25)
    if cgroup is None or cgroup.cpu is None:
        pytest.skip("no cpu cgroup controller can be written on this machine")
    spinner = subprocess.Popen([sys.executable, "-c", SPIN, "2"], stdin=subprocess.PIPE)
    try:
        for procs in cgroup.procs_files:
            procs.write_text(str(spinner.pid))
        assert spinner.stdin is not None
        start = time.monotonic()
        spinner.stdin.write(b"go\n")
        spinner.stdin.flush()
        _, status, usage = os.wait4(spinner.pid, 0)
        wall = time.monotonic() - start
    finally:
        spinner.kill()
        cgroup.remove()
    assert os.waitstatus_to_exitcode(status) == 0
    cpu = usage.ru_utime + usage.ru_stime
    assert wall >= 2.0 and cpu < 0.45 * wall, (cpu, wall)


def _membership(pid: int) -> dict[str, str]:
    """The cgroup of ``pid`` per controller (``""`` stands for v2's unified tree)."""
    found = {}
    for line in Path(f"/proc/{pid}/cgroup").read_text(encoding="utf-8").splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else [""]:
            found[controller] = path.rpartition("/")[2]
    return found


def test_a_box_runs_in_its_cgroup_under_every_controller() -> None:
    """The box's launcher joins its pids, memory and cpu cgroups before anything else runs."""
    from medarena.sandbox import SandboxLimits
    from medarena.sandbox.box import Box

    box = Box(limits=SandboxLimits(), threads=1)
    try:
        cgroup = box.cgroup
        if cgroup is None:
            pytest.skip("no cgroup can be created on this machine")
        if cgroup.v2:
            wanted = {"": cgroup.pids.name}
        else:
            folders = {"pids": cgroup.pids, "memory": cgroup.memory, "cpu": cgroup.cpu}
            wanted = {name: folder.name for name, folder in folders.items() if folder}
        deadline = time.monotonic() + 10
        while (membership := _membership(box.process.pid)) and time.monotonic() < deadline:
            if all(membership.get(controller) == name for controller, name in wanted.items()):
                break
            time.sleep(0.05)
    finally:
        box.close()
    assert {c: membership.get(c) for c in wanted} == wanted, membership
