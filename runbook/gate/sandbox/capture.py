"""A run's output, read as it comes, kept up to a cap and counted beyond it."""

from __future__ import annotations

import os
import selectors
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO

__all__ = ["KEEP_BYTES", "OUTPUT_LIMIT", "Collected", "collect"]

KEEP_BYTES = 1024 * 1024  # bytes kept of each stream; the rest is counted, and said so
OUTPUT_LIMIT = 16 * 1024 * 1024  # bytes on stdout and stderr together; then the run is stopped
DRAIN_SECONDS = 2.0  # after the run is stopped, for what is still in the pipes
CHUNK = 65536
#: A stream (``logs tail --follow``) that printed a whole line and then nothing for this long
#: has shown what it had: it is stopped then, not at its timeout.
QUIET_SECONDS = 0.5


@dataclass
class Stream:
    name: str
    kept: bytearray = field(default_factory=bytearray)
    total: int = 0

    def feed(self, data: bytes) -> None:
        room = KEEP_BYTES - len(self.kept)
        if room > 0:
            self.kept += data[:room]
        self.total += len(data)

    def text(self) -> str:
        text = self.kept.decode("utf-8", errors="replace")
        cut = self.total - len(self.kept)
        if cut:
            text += (f"\n[runbook sandbox: {cut:,} more bytes of {self.name} cut; "
                     f"{len(self.kept):,} of {self.total:,} kept]\n")
        return text


@dataclass
class Collected:
    rc: int
    stdout: str
    stderr: str
    timed_out: bool
    over_limit: bool  # more than OUTPUT_LIMIT bytes: stopped
    settled: bool = False  # a stream stopped once it went quiet (timed_out too: it was stopped)


def collect(proc: subprocess.Popen[bytes], timeout: float, stop: Callable[[], None],
            stream: bool = False) -> Collected:
    """Read ``proc``'s stdout and stderr (pipes) until it exits, ``timeout`` passes or it has
    written more than OUTPUT_LIMIT; then ``stop()`` everything that may still write, and read
    what is left. The exit status is 124 after a timeout.

    ``stream``: the command never ends by itself; it is stopped as soon as it has printed a
    whole line on stdout and then QUIET_SECONDS of nothing (``settled``), or at ``timeout``."""
    assert proc.stdout is not None and proc.stderr is not None  # started with PIPEs
    streams: dict[IO[bytes], Stream] = {proc.stdout: Stream("stdout"), proc.stderr: Stream("stderr")}
    selector = selectors.DefaultSelector()
    for pipe in streams:
        os.set_blocking(pipe.fileno(), False)
        selector.register(pipe, selectors.EVENT_READ)
    pidfd = os.pidfd_open(proc.pid)
    selector.register(pidfd, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    exited = timed_out = over = settled = False
    out = streams[proc.stdout]
    try:
        while not (exited or over):
            now = time.monotonic()
            left = deadline - now
            if left <= 0:
                timed_out = True
                break
            shown = stream and b"\n" in out.kept and bool(out.kept.strip())
            ready = selector.select(min(left, QUIET_SECONDS) if shown else left)
            if not ready and shown and time.monotonic() - now >= QUIET_SECONDS:
                timed_out = settled = True
                break
            for key, _ in ready:
                if key.fileobj == pidfd:
                    exited = True
                else:
                    _read(selector, key.fileobj, streams)  # type: ignore[arg-type]
            over = sum(s.total for s in streams.values()) > OUTPUT_LIMIT
        selector.unregister(pidfd)
    finally:
        os.close(pidfd)
    stop()
    rc = proc.wait()
    drain_until = time.monotonic() + DRAIN_SECONDS
    while selector.get_map() and time.monotonic() < drain_until:
        if sum(s.total for s in streams.values()) > OUTPUT_LIMIT:
            over = True
            break
        for key, _ in selector.select(drain_until - time.monotonic()):
            _read(selector, key.fileobj, streams)  # type: ignore[arg-type]
    selector.close()
    for pipe in streams:
        pipe.close()
    return Collected(rc=124 if timed_out else rc, stdout=streams[proc.stdout].text(),
                     stderr=streams[proc.stderr].text(), timed_out=timed_out, over_limit=over, settled=settled)


def _read(selector: selectors.BaseSelector, pipe: IO[bytes], streams: dict[IO[bytes], Stream]) -> None:
    try:
        data = os.read(pipe.fileno(), CHUNK)
    except BlockingIOError:
        return
    if data:
        streams[pipe].feed(data)
    else:
        selector.unregister(pipe)
