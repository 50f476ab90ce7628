"""Incident drills: one test per alarm × environment, each a simulated incident in which the
alarm page's own steps (as rendered for the environment) find the cause and its resolution
fixes it; then pages broken on purpose, which must fail their drill, and the located errors
`runbook check` gives a bad drill.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from runbook.data.load import load_cached
from runbook.drill import run as drill
from runbook.drill.cli import not_useful
from runbook.gate import run as gate

from .conftest import ROOT, aws_cli_path, copy_project, require_aws_cli, require_isolation

CATALOG = load_cached(ROOT / "runbook_data")
DRILLS = drill.drills(CATALOG)


@pytest.fixture(scope="module")
def results() -> dict[str, drill.DrillResult]:
    require_aws_cli()
    require_isolation("netns")
    p = gate.plan(ROOT / "mkdocs.yml")
    try:
        return {f"{r.alarm}[{r.env}]": r for r in drill.run(p, DRILLS, aws_cli=aws_cli_path())}
    finally:
        p.close()


def test_drills_cover_at_least_ten_alarms_in_every_environment() -> None:
    alarms = {a.id for a, _ in DRILLS}
    assert len(alarms) >= 10, sorted(alarms)
    assert len(DRILLS) == len(alarms) * len(CATALOG.environments)


@pytest.mark.parametrize(("alarm", "env"), [pytest.param(a.id, e, id=f"{a.id}[{e}]") for a, e in DRILLS])
def test_drill(alarm: str, env: str, results: dict[str, drill.DrillResult]) -> None:
    r = results[f"{alarm}[{env}]"]
    assert r.passed, "\n".join(r.failures())
    statuses = {line.what: line.status for line in r.lines}
    assert statuses["alarm"] == "ok" and "→ ALARM" in r.lines[0].text
    assert statuses["recovered"] == "ok"
    found = [line for line in r.lines if line.status == drill.PASS]
    a = CATALOG.alarm(alarm)
    assert a.drill is not None
    assert len(found) == len(a.drill.finds) + 1  # every finding, and step 1's ALARM
    assert all(line.where.startswith(f"docs/alarms/{alarm}.md:") for line in found)


def test_steps_that_reveal_nothing_are_reported_at_their_yaml_line(results: dict[str, drill.DrillResult]) -> None:
    warnings = not_useful(list(results.values()))
    for w in warnings:
        assert w.loc.file.startswith("runbook_data/alarms/") and w.loc.line > 1
        assert "reveals nothing in its drill" in w.message
    # Every step that runs something reveals something in its drill, in this data.
    assert warnings == []


# ------------------------------------------------------------------ pages broken on purpose


def _drill_copy(tmp_path: Path, alarm: str, edit: tuple[str, str, str]) -> subprocess.CompletedProcess[str]:
    project = copy_project(tmp_path / "project")
    path, old, new = edit
    target = project / path
    text = target.read_text(encoding="utf-8")
    assert old in text, old
    target.write_text(text.replace(old, new, 1), encoding="utf-8")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "RUNBOOK_AWS_CLI": aws_cli_path()}
    return subprocess.run([sys.executable, "-m", "runbook", "drill", "--mkdocs", str(project / "mkdocs.yml"),
                           "--alarm", alarm, "--env", "prod", "--jobs", "1"],
                          cwd=project, capture_output=True, text=True, timeout=600, env=env)


@pytest.mark.requires_aws_cli
@pytest.mark.requires_isolation("netns")
def test_a_step_that_no_longer_shows_the_error_pattern_fails_its_drill(tmp_path: Path) -> None:
    # The log search of lambda-errors looks for WARN instead of ERROR: the timeouts stay hidden.
    proc = _drill_copy(tmp_path, "lambda-errors", ("runbook_data/alarms/lambda.yaml",
                                                   '--filter-pattern "ERROR"', '--filter-pattern "WARN"'))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    failure = next(line for line in proc.stderr.splitlines() if "drill lambda-errors: step 2" in line)
    assert failure.startswith("docs/alarms/lambda-errors.md:") and "[prod]" in failure
    assert "matches nothing in what the step printed" in failure
    assert "(from runbook_data/alarms/lambda.yaml:" in failure
    assert "0 of 1 drills passed" in proc.stdout


@pytest.mark.requires_aws_cli
@pytest.mark.requires_isolation("netns")
def test_a_rollback_of_the_wrong_alias_fails_its_drill(tmp_path: Path) -> None:
    old = "--name live \\\n                --function-version {previous-version}"
    proc = _drill_copy(tmp_path, "lambda-error-rate", ("runbook_data/alarms/lambda.yaml", old,
                                                       old.replace("--name live", "--name canary")))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "drill lambda-error-rate: resolution: 'The spike correlates with a deployment': the command failed" \
        in proc.stderr
    assert "ResourceNotFoundException" in proc.stderr or "not found" in proc.stderr.lower()


@pytest.mark.requires_aws_cli
@pytest.mark.requires_isolation("netns")
def test_a_rollback_that_leaves_the_bad_version_live_fails_the_recovery(tmp_path: Path) -> None:
    # The rollback runs, but to the version that is live already: the recovery check catches it.
    proc = _drill_copy(tmp_path, "lambda-error-rate", ("runbook_data/alarms/lambda.yaml",
                                                       'fill_ins: {previous-version: "2", live-version: "3"}',
                                                       'fill_ins: {previous-version: "3", live-version: "3"}'))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "recovered: not recovered: `live` points at version 2 again does not hold" in proc.stderr
    assert '"FunctionVersion": "3"' in proc.stderr


def _check_copy(tmp_path: Path, edits: list[tuple[str, str, str]]) -> subprocess.CompletedProcess[str]:
    project = copy_project(tmp_path / "project")
    for path, old, new in edits:
        target = project / path
        text = target.read_text(encoding="utf-8")
        assert old in text, old
        target.write_text(text.replace(old, new, 1), encoding="utf-8")
    return subprocess.run([sys.executable, "-m", "runbook", "--data", str(project / "runbook_data"), "check"],
                          cwd=project, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})


def _line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if text in line)


def test_check_locates_a_drills_unknown_step_resolution_call_and_input(tmp_path: Path) -> None:
    lam = "runbook_data/alarms/lambda.yaml"
    proc = _check_copy(tmp_path, [
        (lam, "resolution: The spike correlates with a deployment", "resolution: The spike correlates with a deploy"),
        (lam, "        - step: 4\n          regex: '\"FunctionVersion\": \"3\"'",
         "        - step: 9\n          regex: '\"FunctionVersion\": \"3\"'"),
        (lam, "call: lambda.update_alias", "call: lambda.update_alia"),
        (lam, 'fill_ins: {previous-version: "2", live-version: "3"}', 'fill_ins: {previous-verison: "2"}'),
        (lam, "errors: [6, 6, 6, 6, 6, 7, 7, 7, 7, 7]", "errrors: [6, 6, 6, 6, 6, 7, 7, 7, 7, 7]"),
    ])
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out = proc.stderr
    data = tmp_path / "project" / lam
    assert f"{lam}:{_line_of(data, 'resolution: The spike correlates with a deploy')}:" in out
    assert "has no resolution 'The spike correlates with a deploy' (did you mean 'The spike correlates with a " \
           "deployment'?)" in out
    assert f"{lam}:{_line_of(data, '- step: 9')}:" in out and "has no step 9: its page has steps 1 to 4" in out
    assert "'lambda' has no operation 'update_alia' (did you mean 'update_alias'?)" in out
    assert "unknown operator input 'previous-verison'" in out
    assert "has no metric 'errrors'" in out and "no data for the alarm's errors" in out
    assert "Traceback" not in out
    assert "5 problem(s) found" in out or "6 problem(s) found" in out


def test_check_rejects_a_scenario_that_does_not_breach_with_the_computed_values(tmp_path: Path) -> None:
    sqs = "runbook_data/alarms/sqs.yaml"
    proc = _check_copy(tmp_path, [(sqs, "metric: [0, 0, 0, 0, 0, 1, 4, 4, 4, 4]", "metric: [0, 0, 0, 0, 0, 0]")])
    assert proc.returncode == 1
    line = _line_of(tmp_path / "project" / sqs, "metric: [0, 0, 0, 0, 0, 0]")  # the data to fix
    for env in ("dev", "prod"):
        assert (f"{sqs}:{line}:9: the scenario does not breach alarm 'sqs-dlq' in {env}: 0 of the last 1 "
                "datapoints [0] > 0 (needs 1; missing data: notBreaching) → OK") in proc.stderr


def test_every_drilled_alarm_page_has_a_collapsed_box_from_its_drill() -> None:
    from runbook.site.render import alarm_page

    for a in CATALOG.alarms:
        page = alarm_page(CATALOG, a.id)
        if a.drill is None:
            assert "What it looks like when this fires" not in page
            continue
        assert '??? example "What it looks like when this fires"' in page
        box = page.split('??? example "What it looks like when this fires"', 1)[1].split("## Resolution", 1)[0]
        assert a.drill.scenario.split(":")[0] in box
        for f in a.drill.finds:
            assert f"**Step {f.step}**" in box
        assert f"runbook drill --alarm {a.id}" in box
        # Collapsed, and below the steps: the first command stays at the top of the page.
        assert page.index("??? example") > page.index("## Investigation")
