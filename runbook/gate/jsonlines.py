"""The parent's side of a JSON-lines child process: one JSON object per line each way.

Used for the static tier's AWS CLI v2 worker and for the sandbox worker. Reads never block
past their timeout (the child's stdout is read with a selector, bytes kept in a buffer).
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import time
from typing import Any

__all__ = ["JsonLinesClient", "NoAnswer", "ChildExited"]


class NoAnswer(Exception):
    """No complete line within the timeout."""


class ChildExited(Exception):
    """The child closed its stdout (it exited) before a complete line."""


class JsonLinesClient:
    """Writes requests to ``proc.stdin`` and reads lines from ``proc.stdout`` (both binary pipes)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.stdin is None or proc.stdout is None:
            raise ValueError("the child needs stdin and stdout pipes")
        self.proc = proc
        self._stdin = proc.stdin
        self._stdout = proc.stdout
        self._buffer = b""

    def send(self, message: Any) -> None:
        """One JSON line to the child; OSError (BrokenPipeError...) if it is gone."""
        self._stdin.write((json.dumps(message) + "\n").encode())
        self._stdin.flush()

    def read_line(self, timeout: float) -> str:
        """The child's next line, without its newline; NoAnswer or ChildExited otherwise."""
        deadline = time.monotonic() + timeout
        fd = self._stdout.fileno()
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise NoAnswer
                if not sel.select(left):
                    continue
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise ChildExited
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode("utf-8", errors="replace")

    def close(self) -> None:
        """Close both pipes (the child sees EOF on its stdin)."""
        for stream in (self._stdin, self._stdout):
            try:
                stream.close()
            except OSError:
                pass
