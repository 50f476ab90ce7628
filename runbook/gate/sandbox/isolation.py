"""Kernel isolation for everything that runs page code, built on bubblewrap.

Two layers, both bubblewrap, both for each tier of the gate:

* :func:`confine` makes the sandbox. The host is read-only, and what page code does not need
  is not there: no home directory, no project (its ``.env`` and other secrets), no /run (no
  host socket), a private /tmp. There is no network, and the sandbox has its own PID, IPC and
  UTS namespaces and no capabilities. When the gate runs as root, what runs inside is uid
  65534 (nobody), because the kernel exempts root from the process limit and an escape should
  land unprivileged.
* :func:`limited` makes one run of page code, inside a sandbox. It gets its own user and PID
  namespaces, so the process limit counts its processes alone and its exit takes every process
  it left. Nothing is writable but ``writable``, and the :class:`Limits` are set with
  prlimit(1), as hard limits that nothing inside can raise.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from runbook.data.model import MAX_TIMEOUT
from runbook.errors import GateError

PROJECT = Path(__file__).resolve().parents[3]

__all__ = ["RUN_LIMITS", "SANDBOX_LIMITS", "SANDBOX_UID", "SCRATCH_BYTES", "SEARCH_PATH", "Limits",
           "confine", "limited", "probe_isolation", "python_paths"]

SEARCH_PATH = "/usr/bin:/bin:/usr/sbin:/sbin"  # where bwrap, setpriv and prlimit live
SANDBOX_UID = 65534  # nobody: who runs page code when the gate runs as root

MIB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Hard resource limits of one run of page code (setrlimit(2))."""

    processes: int  # RLIMIT_NPROC: processes and threads, in the run's own user namespace
    memory: int | None = None  # RLIMIT_AS: bytes of address space, per process
    file_size: int | None = None  # RLIMIT_FSIZE: bytes, per file written
    cpu: int | None = None  # RLIMIT_CPU: seconds, per process

    def prlimit(self) -> list[str]:
        limits = {"nproc": self.processes, "as": self.memory, "fsize": self.file_size,
                  "cpu": self.cpu, "core": 0}
        return [_tool("prlimit"), *(f"--{k}={v}:{v}" for k, v in limits.items() if v is not None),
                "--"]


#: Limits of every snippet and every expansion. Measured: a boto3 snippet that moves 40 MB
#: through S3's threaded transfer manager peaks at 640 MiB of address space (glibc reserves
#: an arena per thread), so 3 GiB leaves room; 128 processes and threads cover any pipeline.
#: The wall-time maximum is the annotations' MAX_TIMEOUT, the CPU limit the same.
RUN_LIMITS = Limits(processes=128, memory=3 * 1024 * MIB, file_size=64 * MIB, cpu=MAX_TIMEOUT)
#: What one run can write in all, across files: the size of its private /tmp (a tmpfs).
SCRATCH_BYTES = 256 * MIB
#: Processes and threads of a whole sandbox (moto's server threads, the CLI fork server and the
#: commands it runs): not a limit any run should meet, a bound on what escapes a run.
SANDBOX_LIMITS = Limits(processes=2048)


def _tool(name: str) -> str:
    path = shutil.which(name, path=SEARCH_PATH)
    if path is None:
        package = "bubblewrap" if name == "bwrap" else "util-linux"
        raise GateError(f"{name} is not installed: the gate runs page code only inside "
                        f"bubblewrap (Debian: apt-get install {package}; make test installs it)")
    return path


def _as_root() -> bool:
    return os.geteuid() == 0


def confine(argv: Sequence[str], *, writable: Sequence[Path] = (), readable: Sequence[Path] = (),
            binds: Sequence[tuple[Path, Path]] = (), tmpfs: Sequence[tuple[Path, int]] = (),
            tmp_size: int | None = None) -> list[str]:
    """``argv`` inside a sandbox (see the module). Only ``writable`` can be written, with
    ``binds`` (host path, path inside) and ``tmpfs`` (path, size in bytes) mounted read-write;
    ``readable`` are the few hidden paths it needs (the project's code, the interpreter), put
    back read-only. ``tmp_size``: the private /tmp is capped to that many bytes."""
    # Under /tmp too (a project cloned there): what is put back in them stays read-only.
    hidden = [p for p in dict.fromkeys(["/var/tmp", "/run", "/home", "/root", str(PROJECT),
                                         os.path.expanduser("~")]) if os.path.isdir(p)]
    new = ["/tmp", *hidden]

    def parents(path: Path) -> list[str]:
        # bubblewrap makes missing parents 0700: uid nobody could not reach what is mounted
        return [a for parent in reversed(path.parents)
                if any(str(parent).startswith(n + "/") for n in new)
                for a in ("--perms", "0755", "--dir", str(parent))]

    view = [a for path in hidden for a in ("--tmpfs", path)]
    for ro in readable:
        view += [*parents(Path(ro)), "--ro-bind", str(ro), str(ro)]
    for rw in writable:
        view += [*parents(Path(rw)), "--bind", str(rw), str(rw)]
    sandbox = [_tool("bwrap"), "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
               *(["--size", str(tmp_size)] if tmp_size is not None else []),
               "--perms", "1777", "--tmpfs", "/tmp", *view]
    for source, inside in binds:
        sandbox += [*parents(Path(inside)), "--bind", str(source), str(inside)]
    for path, size in tmpfs:
        sandbox += ["--size", str(size), "--perms", "1777", "--tmpfs", str(path)]
    # What is bound into them stays; the rest of them cannot be written (no planted files).
    sandbox += [a for path in hidden for a in ("--remount-ro", path)]
    sandbox += ["--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
                "--", *SANDBOX_LIMITS.prlimit(), *argv]
    if not _as_root():
        return sandbox
    # As root: a first bubblewrap, with no namespace but a mount namespace, makes what the
    # sandbox needs reachable by nobody (the interpreter may be under /root, 0700) and drops
    # to nobody; then the sandbox is made as for anyone else. (A sandbox made by root would
    # mount a /proc in which no limited run could mount its own.)
    _chown_tree([*writable, *(source for source, _ in binds)])
    sources = [a for source, _ in binds for a in (*parents(source), "--bind", str(source), str(source))]
    reach = [_tool("bwrap"), "--ro-bind", "/", "/", "--dev-bind", "/dev", "/dev",
             "--dev-bind", "/proc", "/proc", "--tmpfs", "/tmp", *view, *sources,
             # Its own PID namespace, whose end takes everything in it: the kernel forgets
             # --die-with-parent of whatever changes its uid (setpriv).
             "--unshare-pid", "--die-with-parent",
             "--cap-drop", "ALL", *(a for cap in ("CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP")
                                    for a in ("--cap-add", cap))]
    drop = [_tool("setpriv"), f"--reuid={SANDBOX_UID}", f"--regid={SANDBOX_UID}", "--clear-groups",
            "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]
    return [*reach, "--", *drop, *sandbox]


def limited(argv: Sequence[str], *, writable: Sequence[str | Path], cwd: str | Path,
            limits: Limits = RUN_LIMITS) -> list[str]:
    """``argv`` as one run of page code inside a sandbox made by :func:`confine` (see the
    module). The network namespace is the sandbox's: its loopback is where moto listens."""
    out = [_tool("bwrap"), "--ro-bind", "/", "/", "--dev-bind", "/dev", "/dev", "--proc", "/proc"]
    for rw in writable:
        out += ["--bind", str(rw), str(rw)]
    return [*out, "--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
            "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--chdir", str(cwd),
            "--", *limits.prlimit(), *argv]


def _chown_tree(paths: Sequence[Path]) -> None:
    for top in paths:
        os.chown(top, SANDBOX_UID, SANDBOX_UID, follow_symlinks=False)
        if not top.is_dir() or top.is_symlink():
            continue
        for root, dirs, files in os.walk(top):
            for name in dirs + files:
                os.chown(os.path.join(root, name), SANDBOX_UID, SANDBOX_UID, follow_symlinks=False)


@functools.cache
def probe_isolation() -> str:
    """"full" when this machine runs both layers (bubblewrap, user namespaces), else "none"."""
    try:
        argv = confine(limited([sys.executable, "-S", "-c", "pass"], writable=["/tmp"], cwd="/"),
                       readable=_interpreter_paths())
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=20,
                              env={"PATH": SEARCH_PATH, "LANG": "C.UTF-8"})
    except (GateError, OSError, subprocess.TimeoutExpired):
        return "none"
    return "full" if done.returncode == 0 else "none"


def _interpreter_paths() -> list[Path]:
    """What this interpreter needs inside a sandbox that hides the project and the homes."""
    paths = {Path(sys.prefix), Path(sys.base_prefix), Path(os.path.realpath(sys.executable)).parent}
    return sorted(p for p in paths if p.is_dir())


def python_paths(extra: Sequence[str | Path] = ()) -> list[Path]:
    """Read-only paths for running this project's Python code in a sandbox: its package, the
    interpreter and virtual environment, and ``extra`` import roots."""
    return [PROJECT / "runbook", *_interpreter_paths(), *(Path(p) for p in extra)]
