#!/usr/bin/env python3
"""Benchmark of the runbook at size; prints a table, asserts nothing.

For each size ALARMSxENVS the runbook is multiplied (scripts/multiply_runbook.py) into a
temporary folder and timed there, one run of each:
- check: `runbook check`;
- build: `mkdocs build --strict`;
- static: `runbook verify --static-only --no-cache`;
- full: `runbook verify --no-cache` (skipped above --full-max blocks: say so with '-');
- shards: the full gate as 4 shards run one after another (--shard K/4), the longest one
  (only with --shards);
- serve: `mkdocs serve`, one alarm's YAML edited, seconds until the served page shows it.

Beside each time: the peak resident memory of the largest process of the command's tree
(sampled every 0.1 s from /proc), and for the gate the number of blocks.

Usage: RUNBOOK_AWS_CLI=/usr/bin/aws .venv/bin/python scripts/bench_scale.py [--sizes 12x2,120x3,500x5]
       [--full-max BLOCKS] [--shards] [--no-serve]
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from multiply_runbook import multiply  # noqa: E402

# The issue's figures for the code it was filed on (min/median of 3 runs, 2 cores); 500 x 5 is
# its extrapolation. Printed beside each measured size.
ISSUE = {
    "12 x 2": {"blocks": "183", "check": "0.29 s", "build": "1.1 s", "static": "5.7 s", "full": "30.5 s",
               "serve": "1.0 s"},
    "120 x 3": {"blocks": "1,596", "check": "0.94 s", "build": "5.8 s", "static": "35.5 s", "full": "265 s"},
    "500 x 5": {"build": "≈ 32 s", "full": "≈ 37 min", "serve": "≈ 33 s"},
}

PYTHON = sys.executable
MKDOCS = str(Path(PYTHON).parent / "mkdocs")


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


def _hwm_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as f:
            return next((int(line.split()[1]) for line in f if line.startswith("VmHWM:")), 0)
    except OSError:
        return 0


class PeakMemory:
    """The largest peak resident memory of any one process of a tree, while it runs."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak_kib = pid, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.1):
            for pid in _tree(self.pid):
                self.peak_kib = max(self.peak_kib, _hwm_kib(pid))

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak_kib


def _env(project: Path) -> dict[str, str]:
    return {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(project),
            "RUNBOOK_AWS_CLI": os.environ.get("RUNBOOK_AWS_CLI", "/usr/bin/aws")}


def timed(project: Path, argv: list[str]) -> tuple[float, int, str]:
    """(seconds, peak MiB of the largest process, what it printed)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=project, env=_env(project), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    memory = PeakMemory(proc.pid)
    out, err = proc.communicate()
    seconds = time.perf_counter() - start
    peak = memory.stop() // 1024
    if proc.returncode not in (0, 1):
        out = f"exit {proc.returncode}: {err.strip()[-300:]}"
    return seconds, peak, out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_rebuild(project: Path, dirty: bool = True) -> tuple[float, int]:
    """Seconds from an edit of one alarm's YAML to the served page showing it; peak MiB.
    ``dirty``: as `make serve` runs it (--dirty: only the pages the edit changes are rebuilt)."""
    port = _free_port()
    proc = subprocess.Popen([MKDOCS, "serve", "--strict", *(["--dirty"] if dirty else []),
                             "-a", f"127.0.0.1:{port}"], cwd=project,
                            env=_env(project), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    memory = PeakMemory(proc.pid)
    url = f"http://127.0.0.1:{port}/alarms/sqs-dlq/"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def page() -> str:
        try:
            with opener.open(url, timeout=5) as r:
                return str(r.read().decode())
        except OSError:
            return ""

    try:
        deadline = time.monotonic() + 900
        while "SQS DLQ Messages" not in page():
            if time.monotonic() > deadline or proc.poll() is not None:
                return float("nan"), 0
            time.sleep(0.2)
        data = project / "runbook_data" / "alarms" / "sqs.yaml"
        text = data.read_text(encoding="utf-8")
        start = time.perf_counter()
        data.write_text(text.replace("title: SQS DLQ Messages", "title: SQS DLQ Messages Edited", 1), encoding="utf-8")
        while "SQS DLQ Messages Edited" not in page():
            if time.monotonic() > deadline:
                return float("nan"), 0
            time.sleep(0.05)
        return time.perf_counter() - start, memory.stop() // 1024
    finally:
        proc.terminate()
        proc.wait()


def _blocks(line: str) -> str:
    m = re.search(r"(\d+) blocks in", line)
    return m.group(1) if m else "?"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="12x2,120x3,500x5")
    parser.add_argument("--full-max", type=int, default=10**9, help="no full gate above this many blocks")
    parser.add_argument("--shards", action="store_true", help="also the full gate as 4 shards in a row")
    parser.add_argument("--no-serve", action="store_true")
    args = parser.parse_args()
    rows = []
    for size in args.sizes.split(","):
        alarms, envs = (int(n) for n in size.lower().split("x"))
        with tempfile.TemporaryDirectory(prefix="runbook-scale-") as tmp:
            project = Path(tmp) / "project"
            multiply(project, alarms, envs)
            row: dict[str, str] = {"size": f"{alarms} x {envs}"}
            secs, mib, _ = timed(project, [PYTHON, "-m", "runbook", "check"])
            row["check"] = f"{secs:.1f} s ({mib} MB)"
            secs, mib, _ = timed(project, [MKDOCS, "build", "--strict", "-d", str(Path(tmp) / "site")])
            row["build"] = f"{secs:.1f} s ({mib} MB)"
            secs, mib, said = timed(project, [PYTHON, "-m", "runbook", "verify", "--static-only", "--no-cache"])
            blocks = _blocks(said)
            row["blocks"] = blocks
            row["static"] = f"{secs:.1f} s ({mib} MB)"
            if blocks.isdigit() and int(blocks) <= args.full_max:
                secs, mib, said = timed(project, [PYTHON, "-m", "runbook", "verify", "--no-cache"])
                row["full"] = f"{secs:.1f} s ({mib} MB)"
                if args.shards:
                    longest = max(timed(project, [PYTHON, "-m", "runbook", "verify", "--no-cache",
                                                  "--shard", f"{k}/4"])[0] for k in range(1, 5))
                    row["shards"] = f"{longest:.1f} s"
            if not args.no_serve:
                secs, mib = serve_rebuild(project)
                row["serve"] = f"{secs:.1f} s ({mib} MB)"
        rows.append(row)
        print(f"done: {row}", file=sys.stderr)
    columns = ["size", "blocks", "check", "build", "static", "full", "shards", "serve"]
    columns = [c for c in columns if any(c in r for r in rows)]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for r in rows:
        print("| " + " | ".join(r.get(c, "-") for c in columns) + " |")
        if r["size"] in ISSUE:
            before = {"size": f"{r['size']} (issue)", **ISSUE[r["size"]]}
            print("| " + " | ".join(before.get(c, "-") for c in columns) + " |")
    print("times: one run each; MB: peak resident memory of the largest single process")
    return 0


if __name__ == "__main__":
    sys.exit(main())
