"""Every kind of bad input gives located lines, all at once, exit 1, no traceback."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from runbook.cli import main

ROOT = Path(__file__).resolve().parent.parent
CASES = sorted((ROOT / "tests/data/invalid").glob("*.yaml"))


def make_project(tmp_path: Path, case: Path) -> Path:
    """A copy of the project's data with the case file put where its `# target:` line says."""
    data = tmp_path / "runbook_data"
    shutil.copytree(ROOT / "runbook_data", data)
    raw = case.read_bytes()  # as bytes: a case may hold bytes that are not UTF-8
    first = raw.splitlines()[0].decode("utf-8")
    assert first.startswith("# target: "), f"{case}: first line must be '# target: <file>'"
    target = data / first.removeprefix("# target: ").strip()
    target.write_bytes(raw)
    return data


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_invalid_data_reports_exact_located_lines(case: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    make_project(tmp_path, case)
    monkeypatch.chdir(tmp_path)
    code = main(["--data", "runbook_data", "check"])
    err = capsys.readouterr().err
    expected = case.with_suffix(".expected.txt").read_text(encoding="utf-8")
    assert code == 1
    assert "Traceback" not in err
    assert err == expected


def _count_commands(node: object) -> int:
    """Commands in raw YAML data: every mapping with a `shell` or `python` key."""
    if isinstance(node, dict):
        return int("shell" in node or "python" in node) + sum(_count_commands(v) for v in node.values())
    if isinstance(node, list):
        return sum(_count_commands(v) for v in node)
    return 0


def test_valid_data_checks_clean(capsys) -> None:
    # The expected counts come from the raw YAML (not from the loader under test).
    data = ROOT / "runbook_data"
    raw = {f: yaml.safe_load(f.read_text(encoding="utf-8"))
           for f in sorted(data.glob("alarms/*.yaml")) + sorted(data.glob("procedures/*.yaml"))}
    envs = len(yaml.safe_load((data / "environments.yaml").read_text(encoding="utf-8"))["environments"])
    alarms = sum(len(d["alarms"]) for f, d in raw.items() if f.parent.name == "alarms")
    pages = sum(1 for f in raw if f.parent.name == "procedures")
    commands = sum(_count_commands(d) for d in raw.values())
    contacts = yaml.safe_load((data / "escalation.yaml").read_text(encoding="utf-8"))["contacts"]
    unset = sum(1 for c in contacts if str(c.get("value") or "").strip()[:1] in ("", "[", "<"))
    assert main(["--data", str(data), "check"]) == 0
    out, err = capsys.readouterr()
    assert out == (
        f"runbook data OK: {envs} environments, {alarms} alarms, {pages} procedure pages, {commands} commands\n"
    )
    # Only warnings, one per placeholder contact (tests/test_escalation.py checks their text).
    lines = err.splitlines()
    assert lines == ([*lines[:-1], f"{unset} warning(s)"] if unset else [])
    assert len(lines[:-1]) == unset
    assert all(re.fullmatch(r"\S*escalation\.yaml:\d+:\d+: warning: contact .*", line) for line in lines[:-1])


def test_missing_files_are_reported_together(tmp_path: Path, monkeypatch, capsys) -> None:
    data = tmp_path / "runbook_data"
    shutil.copytree(ROOT / "runbook_data", data)
    (data / "inputs.yaml").unlink()
    shutil.rmtree(data / "alarms")
    (data / "alarms").mkdir()
    monkeypatch.chdir(tmp_path)
    assert main(["--data", "runbook_data", "check"]) == 1
    assert capsys.readouterr().err == (
        "runbook_data/alarms:1:1: no alarm files found\n"
        "runbook_data/inputs.yaml:1:1: required file is missing\n"
        "2 problem(s) found\n"
    )


def test_console_script_reports_problems_without_traceback(tmp_path: Path) -> None:
    make_project(tmp_path, ROOT / "tests/data/invalid/many-problems.yaml")
    proc = subprocess.run(
        [sys.executable, "-m", "runbook", "--data", "runbook_data", "check"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    expected = (ROOT / "tests/data/invalid/many-problems.expected.txt").read_text(encoding="utf-8")
    assert proc.stderr == expected
