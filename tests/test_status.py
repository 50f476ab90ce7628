"""What was verified, on the page: a status per block and environment from the gate's report,
"not verified yet" without one, "changed since" for a block the report does not hold, a status
page listing every block, and a home page claim that matches the status page's counts."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from runbook.site.build import build
from runbook.site.status import Report, block_digest, claim, describe, status_page

from .conftest import ROOT, copy_project

META = {"verified_at": "2026-12-01 10:00 UTC", "commit": "abc123", "aws_cli": "aws-cli/2.9.19", "moto": "5.2.5"}


def _result(text: str, status: str, tier: str = "exec", message: str = "", env: str = "dev") -> dict:
    return {"page": "docs/p.md", "line": 3, "env": env, "tier": tier, "status": status, "message": message,
            "digest": block_digest(env, text)}


def test_each_kind_of_result_reads_honestly() -> None:
    report = Report(META, [
        _result("aws a", "passed"),
        _result("aws b", "xfailed", message="xfail (moto does not implement X): exit status 255"),
        _result("aws c", "skipped", tier="extract", message="streams forever"),
        _result("aws d", "failed", tier="static", message="line 4: Unknown options: --x\nmore"),
        _result("aws e", "passed", tier="static"),
    ])
    said = {text: describe(report, "dev", text, "docs/p.md") for text in ("aws a", "aws b", "aws c", "aws d", "aws e")}
    assert said["aws a"] == ("verified", "Verified against a simulated AWS (moto): static check and run "
                                         "(2026-12-01 10:00 UTC, commit abc123, aws-cli/2.9.19, moto 5.2.5).")
    assert said["aws b"][0] == "static" and "moto does not implement X" in said["aws b"][1]
    assert said["aws c"][0] == "not-run" and "streams forever" in said["aws c"][1]
    assert said["aws d"][0] == "failed" and "Unknown options: --x" in said["aws d"][1]
    assert "more" not in said["aws d"][1]  # the first line only
    assert said["aws e"][0] == "static" and "static tier only" in said["aws e"][1]
    assert describe(report, "dev", "aws changed", "docs/p.md")[0] == "changed"
    assert describe(report, "prod", "aws a", "docs/p.md")[0] == "unverified"  # prod was not in this run
    assert describe(None, "dev", "aws a")[0] == "unverified"
    assert not any("production" in s and "not" not in s for _, s in said.values())
    # The claim counts what the status page counts.
    numbers = re.findall(r"(\d+) (?:were run|were checked|were not run|failed)", claim(report))
    assert numbers == ["1", "2", "1", "1"]
    page = status_page(report)
    assert "1 verified, 2 checked statically only, 1 not run, 1 failed" in page and page.count("| p.md |") == 0
    assert page.count("[p.md](p.md)") == 5


@pytest.mark.gate
def test_break_a_command_rerun_and_its_status_shows_the_failure(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project")
    path = project / "runbook_data" / "alarms" / "lambda.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace('--filter-pattern "ERROR"', '--filter-patern "ERROR"', 1),
                    encoding="utf-8")
    report = tmp_path / "r.json"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1",
           "RUNBOOK_AWS_CLI": os.environ.get("RUNBOOK_AWS_CLI", "/usr/bin/aws")}
    proc = subprocess.run([sys.executable, "-m", "runbook", "verify", "--mkdocs", str(project / "mkdocs.yml"),
                           "--no-cache", "--static-only", "--report", str(report)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    os.environ["RUNBOOK_REPORT"] = str(report)
    try:
        built = build(project / "mkdocs.yml", tmp_path / "out")
    finally:
        del os.environ["RUNBOOK_REPORT"]
    assert built.ok, built.output
    page = (built.site_dir / "alarms" / "lambda-errors" / "index.html").read_text(encoding="utf-8")
    failed = re.findall(r'<p class="rb-status rb-status-failed">([^<]*)</p>', page)
    assert len(failed) == 2 and all("Unknown options: --filter-patern" in f for f in failed), failed
    assert page.count("rb-status-static") > 2  # the others: checked statically (this run was static only)
    home = (built.site_dir / "index.html").read_text(encoding="utf-8")
    status = (built.site_dir / "status" / "index.html").read_text(encoding="utf-8")
    said = re.search(r"Of the site.s (\d+) command blocks \(one per environment\), (\d+) were run against a "
                     r"simulated AWS \(moto\), (\d+) were checked statically only, (\d+) were not run and (\d+) failed",
                     home)
    assert said, home[:2000]
    total, run, static, not_run, failed_n = map(int, said.groups())
    m = re.search(r"(\d+) verified, (\d+) checked statically only, (\d+) not run, (\d+) failed", status)
    assert m and tuple(map(int, m.groups())) == (run, static, not_run, failed_n) and failed_n == 2
    assert total == status.count("<tr>") - 1  # one row per block and environment (and the header)
    assert "verified in production" not in home + status + page
