"""The narrow channel to a box: JSON lines to the guest on its stdin, JSON lines back on a pipe
of their own, and the box's stdout/stderr drained beside them (a tail kept, bytes counted).

The channel checks what comes back only for form (a line of at most 64 KiB holding a JSON object
with an ``event``), the deadline and the output allowance, and runs its owner's ``guard`` while it
waits (the box measures its scratch folder). When one is broken it raises :class:`ChannelError`;
the box then kills itself and names the failure (:meth:`Box.receive`).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

from medarena.sandbox.failures import Failure

MAX_MESSAGE_BYTES = 64 * 1024
"""A line on the channel longer than this is a protocol violation."""
OUTPUT_TAIL_BYTES = 16 * 1024
"""How much of the sandbox's stdout/stderr is kept to show with an error."""


class ChannelError(Exception):
    """The box broke the channel: ``kind`` says how, ``detail`` what was seen (empty for
    :attr:`Failure.EXITED`, whose detail only the box can tell)."""

    def __init__(self, kind: Failure, detail: str = "") -> None:
        super().__init__(kind, detail)
        self.kind, self.detail = kind, detail


class Channel:
    """Messages to and from one box's process, whose replies come on ``reply_fd``.

    A thread drains the process's stdout (stderr joined to it) from the start, so that a guest
    that prints never blocks; ``output_kb`` is the allowance of each phase (:meth:`reset_output`).
    ``guard`` is called every tick (0.2 s at most) while a message is awaited, and the error it
    returns, if any, breaks the wait.
    """

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        reply_fd: int,
        *,
        output_kb: int,
        guard: Callable[[], ChannelError | None] = lambda: None,
    ) -> None:
        self._process = process
        self._guard = guard
        self._reply = reply_fd
        self._pending = b""
        self._output_kb = output_kb
        self._output_tail = bytearray()
        self._output_bytes = 0
        self._output_lock = threading.Lock()
        self._reader = threading.Thread(target=self._drain_output, daemon=True)
        self._reader.start()

    def _drain_output(self) -> None:
        """Read the box's stdout/stderr as it comes, keeping a tail and counting bytes."""
        stream = self._process.stdout
        assert stream is not None
        while chunk := stream.read1(65536):  # type: ignore[attr-defined]
            with self._output_lock:
                self._output_bytes += len(chunk)
                self._output_tail += chunk
                del self._output_tail[:-OUTPUT_TAIL_BYTES]

    def reset_output(self, *, clear: bool = False) -> None:
        """Start counting output afresh (each phase has its own allowance); ``clear`` also
        forgets the output kept so far (a new job starts)."""
        with self._output_lock:
            self._output_bytes = 0
            if clear:
                self._output_tail.clear()

    @property
    def output_tail(self) -> str:
        with self._output_lock:
            return self._output_tail.decode("utf-8", "replace")

    def send(self, **message: Any) -> None:
        stdin = self._process.stdin
        assert stdin is not None
        try:
            stdin.write((json.dumps(message) + "\n").encode())
            stdin.flush()
        except OSError:  # the box is gone; the next receive says why
            pass

    def receive(self, *, timeout: float) -> dict[str, Any]:
        """The next message, checked to be a small JSON object with an ``event``.

        Raises :class:`ChannelError` when the deadline passes, the output allowance is spent,
        the reply pipe closes or what comes is not a message.
        """
        deadline = time.monotonic() + timeout
        while b"\n" not in self._pending:
            if len(self._pending) > MAX_MESSAGE_BYTES:
                raise ChannelError(Failure.PROTOCOL, "a message longer than 64 KiB")
            self._check_output()
            if (broken := self._guard()) is not None:
                raise broken
            left = deadline - time.monotonic()
            if left <= 0:
                raise ChannelError(Failure.TIME_LIMIT, f"the limit is {timeout:g} s")
            ready, _, _ = select.select([self._reply], [], [], min(left, 0.2))
            if not ready:
                continue
            chunk = os.read(self._reply, 65536)
            if not chunk:
                raise ChannelError(Failure.EXITED)
            self._pending += chunk
        self._check_output()  # also when the message came at once: output precedes it
        line, _, self._pending = self._pending.partition(b"\n")
        if len(line) > MAX_MESSAGE_BYTES:  # its end came in the same read as the rest
            raise ChannelError(Failure.PROTOCOL, "a message longer than 64 KiB")
        try:
            message = json.loads(line)
        except (ValueError, RecursionError):
            raise ChannelError(Failure.PROTOCOL, "a message that is not JSON") from None
        if not isinstance(message, dict) or not isinstance(message.get("event"), str):
            raise ChannelError(Failure.PROTOCOL, "a message without an event")
        return message

    def _check_output(self) -> None:
        with self._output_lock:
            spent = self._output_bytes
        if spent > self._output_kb * 1024:
            raise ChannelError(
                Failure.TOO_MUCH_OUTPUT,
                f"{spent / 1024:.0f} KiB printed; the limit is {self._output_kb} KiB per phase",
            )

    def close(self) -> None:
        """Close the pipes and wait a little for the drain (call it once the process is killed)."""
        for stream in (self._process.stdin, self._process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        with contextlib.suppress(OSError):
            os.close(self._reply)
        self._reader.join(timeout=5)
