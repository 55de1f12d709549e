"""The seccomp filter compiles here, and names only system calls the kernel has (a misspelt one
would be skipped as 'not of this architecture' and leave its call open)."""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap

import pytest

from medarena.sandbox.seccomp import DENIED, compiled_filter

X86_ONLY = {"iopl", "ioperm"}


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the names are checked on x86_64")
def test_every_denied_name_is_a_system_call_of_x86_64() -> None:
    import pyseccomp

    arch = pyseccomp.system_arch()
    unknown = [name for name in DENIED if pyseccomp.resolve_syscall(arch, name) < 0]
    assert unknown == []


def test_the_filter_compiles_to_a_program_with_a_rule_per_call() -> None:
    program = compiled_filter()
    assert program is not None and len(program) % 8 == 0  # struct sock_filter is 8 bytes
    # An architecture check, a load, one jump per denied call, and the returns.
    assert len(program) // 8 >= len(DENIED) - len(X86_ONLY)


def test_without_libseccomp_there_is_no_filter_and_a_warning() -> None:
    """As on a machine without libseccomp: ``pyseccomp`` cannot find the library."""
    script = textwrap.dedent("""
        import ctypes.util, logging
        found = ctypes.util.find_library
        ctypes.util.find_library = lambda name: None if name == "seccomp" else found(name)
        logging.basicConfig(level=logging.WARNING, format="%(message)s")
        from medarena.sandbox.seccomp import compiled_filter
        print(compiled_filter())
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "None"
    assert "sandboxes run without a seccomp filter" in run.stderr
