"""Processes seen through /proc (inside the sandbox's PID namespace: every process is ours)."""

from __future__ import annotations

import ctypes
import os

__all__ = ["children_of", "killpg", "not_dumpable", "pids", "ppid"]

PR_SET_DUMPABLE = 4  # prctl(2), <linux/prctl.h>


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


def not_dumpable() -> None:
    """Keep snippets (same uid, no capabilities) out of this process: with the dumpable flag
    off, /proc/<pid>/fd, mem and environ are closed to them and so is ptrace, so no snippet
    can forge a reply on a protocol descriptor or change moto's state in memory. A fork keeps
    the flag; an exec gives it back."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE, 0) failed")
