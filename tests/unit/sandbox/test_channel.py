"""The channel's checks of what a box sends, against a real process writing to a real pipe."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from medarena.sandbox.channel import MAX_MESSAGE_BYTES, Channel, ChannelError
from medarena.sandbox.failures import Failure


@pytest.fixture
def writer() -> Iterator[object]:
    """Start a process that writes the given bytes at once to its reply pipe, then waits."""
    started: list[tuple[subprocess.Popen[bytes], Channel]] = []

    def start(payload: bytes) -> Channel:
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
        channel = Channel(process, read, output_kb=64)
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
