"""How located problems and paths are shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from runbook.errors import Loc, Problem, RunbookError, shown_path


def test_a_path_inside_the_working_directory_is_shown_relative(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "runbook_data").mkdir()
    monkeypatch.chdir(tmp_path)
    assert shown_path(tmp_path / "runbook_data" / "environments.yaml") == "runbook_data/environments.yaml"
    assert shown_path("runbook_data") == "runbook_data"


def test_a_path_outside_the_working_dir_is_shown_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inside = tmp_path / "project"
    inside.mkdir()
    monkeypatch.chdir(inside)
    assert shown_path(tmp_path / "other" / "x.md") == str(tmp_path / "other" / "x.md")


def test_problems_are_sorted_unique_and_one_per_line() -> None:
    b = Problem(Loc("b.yaml", 2, 1), "second")
    a = Problem(Loc("a.yaml", 9, 3), "first")
    err = RunbookError([b, a, b])
    assert str(err) == "a.yaml:9:3: first\nb.yaml:2:1: second"
