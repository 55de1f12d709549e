"""The box's seccomp filter: kernel interfaces a model never needs answer ``EPERM``.

Namespaces, dropped capabilities and ``--disable-userns`` already make most of these calls
useless inside a box; the filter takes away the kernel code behind them, which is where sandbox
escapes come from (io_uring, userfaultfd, eBPF and perf events among the most common), and
kernel state a model has no use for (keyrings). Everything else is allowed: the
filter is a deny list, so training code (threads, ``fork``, CUDA's ``ioctl`` and ``mmap``) is
untouched. libseccomp (through ``pyseccomp``) compiles it for the machine's architecture, and
kills a process that makes system calls of another architecture (the 32-bit entry points).
bubblewrap loads it (``--seccomp FD``) just before it starts the guest.
"""

from __future__ import annotations

import errno
import functools
import logging
import tempfile

log = logging.getLogger(__name__)

DENIED = (
    # A second system-call interface that a filter cannot see into, and a steady source of bugs.
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    # The usual tools for winning kernel races, and kernel programs.
    "userfaultfd", "bpf", "perf_event_open",
    # Kernel keyrings: kernel state a model has no use for.
    "add_key", "keyctl", "request_key",
    # Tracing, and reading or comparing other processes.
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
    # Namespaces, mounts and file handles (refused for lack of capabilities too).
    "unshare", "setns", "mount", "umount2", "pivot_root", "chroot", "open_tree", "move_mount",
    "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr", "open_by_handle_at",
    "name_to_handle_at", "fanotify_init",
    # The machine's: modules, kexec, reboot, swap, accounting, clocks, the kernel log, I/O ports.
    "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load", "reboot",
    "swapon", "swapoff", "acct", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
    "syslog", "quotactl", "lookup_dcookie", "iopl", "ioperm",
)  # fmt: skip
"""System calls that fail with ``EPERM`` in a box (those the architecture lacks are skipped)."""


@functools.cache
def compiled_filter() -> bytes | None:
    """The filter as the classic BPF program bubblewrap loads; ``None`` (and a warning) where
    libseccomp is missing."""
    try:
        import pyseccomp
    except (ImportError, OSError, RuntimeError) as exc:  # RuntimeError: no libseccomp.so
        log.warning("no libseccomp (%s): sandboxes run without a seccomp filter", exc)
        return None
    rules = pyseccomp.SyscallFilter(pyseccomp.ALLOW)
    for name in DENIED:
        try:
            rules.add_rule(pyseccomp.ERRNO(errno.EPERM), name)
        except (ValueError, OSError):  # not a system call of this architecture
            continue
    with tempfile.TemporaryFile() as program:
        rules.export_bpf(program)
        program.seek(0)
        return program.read()
