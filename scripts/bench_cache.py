#!/usr/bin/env python3
"""Benchmark of re-runs with the verification cache; prints figures, asserts nothing.

Three runs of `runbook verify` (every environment) on a copy of the project, one after another:
- cold: an empty cache;
- warm: nothing changed;
- one alarm changed: a command of one alarm edited (its blocks run again, the rest come from
  the cache).
For each: the wall time and how many blocks were executed now (the rest came from the cache).

Usage: RUNBOOK_AWS_CLI=/usr/bin/aws .venv/bin/python scripts/bench_cache.py
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(project: Path, cache: Path, *extra: str) -> tuple[float, str]:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1",
           "RUNBOOK_AWS_CLI": os.environ.get("RUNBOOK_AWS_CLI", "/usr/bin/aws")}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "runbook", "verify", "--mkdocs", str(project / "mkdocs.yml"),
                           "--cache-dir", str(cache), *extra], cwd=project, env={**env, "PYTHONPATH": str(project)},
                          capture_output=True, text=True)
    seconds = time.perf_counter() - start
    m = re.search(r"(\d+) result\(s\) from the verification cache, (\d+) checked now", proc.stdout)
    ran = m.group(2) if m else "?"
    return seconds, f"{ran} executed ({proc.stdout.splitlines()[-1] if proc.stdout else proc.stderr[-200:]})"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "project"
        for name in ("docs", "runbook_data", "macros", "runbook"):
            shutil.copytree(ROOT / name, project / name, ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy(ROOT / "mkdocs.yml", project / "mkdocs.yml")
        cache = Path(tmp) / "cache"
        report = Path(tmp) / "report.json"
        rows = [("cold (empty cache)", *_run(project, cache, "--report", str(report))),
                ("warm (nothing changed)", *_run(project, cache))]
        sys.path.insert(0, str(ROOT))
        from runbook.site.status import counts, load_report

        statuses = dict(counts(load_report(report))) if report.exists() else {}
        path = project / "runbook_data" / "alarms" / "lambda.yaml"
        text = path.read_text(encoding="utf-8")
        path.write_text(text.replace("--period 300 \\\n", "--period 60 \\\n", 1), encoding="utf-8")
        rows.append(("one alarm changed", *_run(project, cache)))
    print(f"{'run':<26} {'wall s':>8}  blocks")
    for name, seconds, detail in rows:
        print(f"{name:<26} {seconds:>8.1f}  {detail}")
    print(f"status of the cold run's blocks x environments: {statuses}")


if __name__ == "__main__":
    main()
