"""The channel's checks of what a box sends, against a real process writing to a real pipe."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest

from medarena.sandbox.channel import MAX_MESSAGE_BYTES, Channel, ChannelError
from medarena.sandbox.failures import Failure


@pytest.fixture
def writer() -> Iterator[object]:
    """Start a process that writes the given bytes at once to its reply pipe, then waits."""
    started: list[tuple[subprocess.Popen[bytes], Channel]] = []

    def start(payload: bytes, guard: Callable[[], ChannelError | None] = lambda: None) -> Channel:
        read, write = os.pipe()
        code = f"import os, sys, time; os.write({write}, {payload!r}); time.sleep(30)"
        process = subprocess.Popen(
            [sys.executable, "-c", code],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            pass_fds=(write,),
        )
        os.close(write)
        channel = Channel(process, read, output_kb=64, guard=guard)
        started.append((process, channel))
        return channel

    yield start
    for process, channel in started:
        process.kill()
        process.wait()
        channel.close()


def _failure(channel: Channel) -> ChannelError:
    with pytest.raises(ChannelError) as caught:
        channel.receive(timeout=20)
    return caught.value


def test_a_message_passes(writer) -> None:  # type: ignore[no-untyped-def]
    assert writer(b'{"event": "started"}\n').receive(timeout=20) == {"event": "started"}


@pytest.mark.parametrize("extra", [0, 1, 40_000, 60_000])
def test_a_long_line_is_refused_whether_or_not_its_end_came_in_the_same_read(
    writer, extra: int
) -> None:  # type: ignore[no-untyped-def]
    # 64 KiB + extra bytes of junk, then a well-formed message: one line longer than allowed.
    payload = b"x" * (MAX_MESSAGE_BYTES + extra) + b'{"event": "started"}\n'
    error = _failure(writer(payload))
    assert (error.kind, error.detail) == (Failure.PROTOCOL, "a message longer than 64 KiB")


@pytest.mark.parametrize(
    ("payload", "detail"),
    [
        (b"not json\n", "a message that is not JSON"),
        (b"[1, 2]\n", "a message without an event"),
        (b'{"event": 3}\n', "a message without an event"),
        (b"[" * 10_000 + b"\n", "a message that is not JSON"),
    ],
)
def test_malformed_messages_are_protocol_violations(writer, payload: bytes, detail: str) -> None:  # type: ignore[no-untyped-def]
    error = _failure(writer(payload))
    assert (error.kind, error.detail) == (Failure.PROTOCOL, detail)


def test_the_guard_breaks_a_wait_while_the_box_is_silent(writer) -> None:  # type: ignore[no-untyped-def]
    """The box's own check (its scratch folder) runs while no message comes, and ends the wait
    with its error long before the deadline."""
    calls: list[float] = []

    def guard() -> ChannelError | None:
        calls.append(time.monotonic())
        return ChannelError(Failure.FILE_LIMIT, "scratch over 64 MiB") if len(calls) >= 3 else None

    start = time.monotonic()
    error = _failure(writer(b"", guard))
    assert (error.kind, error.detail) == (Failure.FILE_LIMIT, "scratch over 64 MiB")
    assert len(calls) == 3 and time.monotonic() - start < 10
