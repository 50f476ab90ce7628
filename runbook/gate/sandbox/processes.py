"""Processes seen through /proc (inside the sandbox's PID namespace: every process is ours)."""

from __future__ import annotations

import os

__all__ = ["children_of", "killpg", "pids", "ppid"]


def pids() -> list[int]:
    return [int(e) for e in os.listdir("/proc") if e.isdigit()]


def ppid(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return 0
    return int(stat.rsplit(b")", 1)[1].split()[1])


def children_of(pid: int) -> list[int]:
    """Children of a single-threaded process (zombies included: not reaped yet)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children", "rb") as f:
            return sorted(int(p) for p in f.read().split())
    except FileNotFoundError:
        return []  # gone
    except OSError:  # no CONFIG_PROC_CHILDREN
        return sorted(p for p in pids() if ppid(p) == pid)


def killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
