"""What process isolation this machine permits, probed once per process with unshare(1)."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from runbook.errors import GateError

PROJECT = Path(__file__).resolve().parents[3]

__all__ = ["SEARCH_PATH", "confine", "probe_isolation"]

SEARCH_PATH = "/usr/bin:/bin:/usr/sbin:/sbin"  # where unshare, ip, mount and setpriv live


@functools.cache
def probe_isolation() -> str:
    """The strongest isolation this machine permits: "full", "netns" or "none".

    "full": user, network, mount and PID namespaces (``unshare -rnm --pid``) with capabilities
    dropped; "netns": a user + network namespace with loopback only (``unshare -rn``)."""
    unshare = shutil.which("unshare", path=SEARCH_PATH)
    if unshare is None:
        return "none"
    env = {"PATH": SEARCH_PATH, "LANG": "C.UTF-8"}
    probes = {
        "full": [unshare, "-rnm", "--pid", "--fork", "--mount-proc", "--kill-child",
                 "bash", "-c", "ip link set lo up && mount -t tmpfs none /mnt && "
                 "setpriv --bounding-set=-all --inh-caps=-all --no-new-privs true"],
        "netns": [unshare, "-rn", "bash", "-c", "ip link set lo up"],
    }
    for level, argv in probes.items():
        try:
            done = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0:
            return level
    return "none"


def confine(argv: Sequence[str], *, writable: Sequence[Path], readable: Sequence[Path] = ()) -> list[str]:
    """``argv`` inside bubblewrap, as the static tier runs page code: the host read-only, with
    no home directory, no project (its secrets), no /run (no host socket) and a private /tmp;
    no network, its own PID, IPC and UTS namespaces, no capabilities. Only ``writable`` can be
    written; ``readable`` are the few project files it needs, put back read-only."""
    bwrap = shutil.which("bwrap", path=SEARCH_PATH)
    if bwrap is None:
        raise GateError(
            "bubblewrap (bwrap) is not installed: the gate runs page code only inside it "
            "(Debian: apt-get install bubblewrap; make test installs it)"
        )
    out = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    hidden = ["/tmp", "/var/tmp", "/run", "/home", "/root", str(PROJECT), os.path.expanduser("~")]
    for path in dict.fromkeys(hidden):
        if os.path.isdir(path):
            out += ["--tmpfs", path]
    for ro in readable:
        out += ["--ro-bind", str(ro), str(ro)]
    for rw in writable:
        out += ["--bind", str(rw), str(rw)]
    return [*out, "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--", *argv]
