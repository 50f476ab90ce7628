"""Every kind of bad input gives located lines, all at once, exit 1, no traceback."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from runbook.cli import main

ROOT = Path(__file__).resolve().parent.parent
CASES = sorted((ROOT / "tests/data/invalid").glob("*.yaml"))


def make_project(tmp_path: Path, case: Path) -> Path:
    """A copy of the project's data with the case file put where its `# target:` line says."""
    data = tmp_path / "runbook_data"
    shutil.copytree(ROOT / "runbook_data", data)
    first = case.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# target: "), f"{case}: first line must be '# target: <file>'"
    target = data / first.removeprefix("# target: ").strip()
    target.write_text(case.read_text(encoding="utf-8"), encoding="utf-8")
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


def test_valid_data_checks_clean(capsys) -> None:
    assert main(["--data", str(ROOT / "runbook_data"), "check"]) == 0
    assert "12 alarms" in capsys.readouterr().out


def test_console_script_reports_problems_without_traceback(tmp_path: Path) -> None:
    make_project(tmp_path, ROOT / "tests/data/invalid/many-problems.yaml")
    proc = subprocess.run(
        [sys.executable, "-m", "runbook", "--data", "runbook_data", "check"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) >= 5 and lines[-1] == f"{len(lines) - 1} problem(s) found"
    assert all(line.startswith("runbook_data/alarms/extra.yaml:") for line in lines[:-1])
