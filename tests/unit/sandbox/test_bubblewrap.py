"""The bubblewrap command line, run for real where bubblewrap works."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import pytest

from medarena.sandbox import SandboxLimits, bubblewrap

pytestmark = pytest.mark.skipif(
    not bubblewrap.sandbox_support().available, reason="bubblewrap cannot run here"
)


def run_in_box(tmp_path: Path, *command: str) -> subprocess.CompletedProcess[str]:
    """Run ``command`` in a box built by the platform's bubblewrap command line (the guest's
    command replaced; ``{python}`` in it stands for the box's interpreter)."""
    folders = {name: tmp_path / name for name in ("code", "data", "etc", "scratch")}
    for folder in folders.values():
        folder.mkdir()
    bubblewrap.write_user_files(folders["etc"])
    full = bubblewrap.box_command(
        3, limits=SandboxLimits(), sandboxed=True, nice=0, threads=1, gpu=False,
        out=folders["scratch"] / "out", **folders,
    )  # fmt: skip
    start = full.index(next(a for a in full if a.endswith("/bwrap")))
    end = full.index("--", start)  # the guest's command follows
    python = full[end + 1]
    inside = [part.replace("{python}", python) for part in command]
    return subprocess.run(
        [*full[start:end], "--", *inside], capture_output=True, text=True, timeout=60, check=False
    )


def test_a_runtime_under_the_hosts_tmp_is_visible_in_the_box(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The box's /tmp is private, yet a runtime installed under the host's /tmp (a virtual
    environment in a CI checkout there) is bound on top of it, not hidden by it."""
    with tempfile.TemporaryDirectory(dir="/tmp") as runtime:
        (Path(runtime) / "marker").write_text("runtime\n", encoding="utf-8")
        secret = Path("/tmp") / f"{Path(runtime).name}-secret"
        secret.write_text("host\n", encoding="utf-8")
        try:
            real = bubblewrap._runtime_paths()
            monkeypatch.setattr(bubblewrap, "_runtime_paths", lambda: [*real, Path(runtime)])
            shown = run_in_box(tmp_path, "/bin/sh", "-c", f"cat {runtime}/marker; ls /tmp")
        finally:
            secret.unlink()
    assert shown.returncode == 0, shown.stderr
    # The runtime is there; the host's other files under /tmp are not.
    assert shown.stdout.split() == ["runtime", Path(runtime).name], shown.stdout


def test_the_sandbox_user_has_a_name(tmp_path: Path) -> None:
    """Libraries that look up the current user (MONAI and torch do at import) find it."""
    lookup = "import getpass, os, pwd; print(pwd.getpwuid(os.getuid()).pw_name, getpass.getuser())"
    shown = run_in_box(tmp_path, "{python}", "-I", "-c", lookup)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.split() == ["nobody", "nobody"]
