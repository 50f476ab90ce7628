"""SIGTERM/SIGINT to `runbook verify`: every sandbox worker and snippet stops, temp folders go, exit 2."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import ROOT

AWS_CLI = os.environ.get("RUNBOOK_AWS_CLI", "/usr/bin/aws")
WORKER = "runbook.gate.sandbox.worker"


def _processes() -> dict[int, tuple[int, str, str, str]]:
    """pid -> (ppid, state, cmdline, cwd) of every process we can see."""
    out: dict[int, tuple[int, str, str, str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
            try:
                cwd = os.readlink(f"/proc/{entry}/cwd")
            except OSError:
                cwd = ""
        except OSError:
            continue
        out[int(entry)] = (int(fields[1]), fields[0].decode(), cmdline, cwd)
    return out


def _descendants(root: int, procs: dict[int, tuple[int, str, str, str]]) -> set[int]:
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, info in procs.items() if info[0] in frontier} - found
        found |= frontier
    return found


def _workers_under(root: int) -> set[int]:
    procs = _processes()
    return {pid for pid in _descendants(root, procs) if WORKER in procs[pid][2]}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_a_signal_stops_every_worker_removes_temp_folders_and_exits_2(
    tmp_path: Path, sig: signal.Signals
) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    stale = tmp_path / "r.json"
    stale.write_text("{}\n")
    env = {**os.environ, "RUNBOOK_AWS_CLI": AWS_CLI, "NO_MKDOCS_2_WARNING": "1", "TMPDIR": str(tmp)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "runbook", "verify", "--mkdocs", str(ROOT / "mkdocs.yml"), "--no-cache",
         "--page", "*lambda-errors*", "--report", str(stale)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        workers: set[int] = set()
        for _ in range(6000):  # bounded poll: until a sandbox worker runs (or verify ended)
            workers = _workers_under(proc.pid)
            if workers or proc.poll() is not None:
                break
            time.sleep(0.02)
        assert workers, f"no sandbox worker appeared (verify exited {proc.poll()})"
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 2, out + err
    assert f"runbook verify: interrupted ({sig.name})" in err
    assert "Traceback" not in err
    left = {
        pid: info for pid, info in _processes().items()
        if info[1] != "Z" and (pid in workers or str(tmp) in info[2] or info[3].startswith(str(tmp)))
    }
    assert not left, left
    assert not [p.name for p in tmp.iterdir() if p.name.startswith("runbook-")]
    assert not stale.exists()


def test_a_finished_run_leaves_nothing_in_tmp(tmp_path: Path) -> None:
    """Both tiers keep their scratch inside their sandboxes or remove it: no `gate-aws-*`,
    `runbook-*` or any other folder piles up in the TMPDIR of the gate."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "RUNBOOK_AWS_CLI": AWS_CLI, "NO_MKDOCS_2_WARNING": "1", "TMPDIR": str(tmp)}
    done = subprocess.run(
        [sys.executable, "-m", "runbook", "verify", "--mkdocs", str(ROOT / "mkdocs.yml"), "--no-cache",
         "--page", "*lambda-errors*"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(p.name for p in tmp.iterdir()) == []
