"""What process isolation this machine permits, probed once per process with unshare(1)."""

from __future__ import annotations

import functools
import shutil
import subprocess

__all__ = ["SEARCH_PATH", "netns_prefix", "probe_isolation"]

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


def netns_prefix() -> list[str]:
    """``[unshare, "-rn"]`` (a command after it has no network at all), or ``[]`` if the
    kernel does not permit a network namespace here."""
    unshare = shutil.which("unshare", path=SEARCH_PATH)
    if unshare is None or probe_isolation() == "none":
        return []
    return [unshare, "-rn"]
