"""The loader cannot be made to hang or crash: alias bombs are bounded, the site build stops cleanly."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from runbook.data.yaml_reader import read
from tests.conftest import copy_project

ROOT = Path(__file__).resolve().parent.parent
INVALID = ROOT / "tests" / "data" / "invalid"


def test_ordinary_anchors_and_merge_keys_still_load(tmp_path: Path) -> None:
    f = tmp_path / "a.yaml"
    f.write_text("base: &b {x: 1, y: [2, 3]}\nother:\n  <<: *b\n  z: *b\n", encoding="utf-8")
    source, problems = read(f, "a.yaml")
    assert problems == [] and source is not None
    assert source.data["other"]["x"] == 1
    assert source.data["other"]["z"]["y"] == [2, 3]


def test_alias_bomb_is_refused_quickly_with_bounded_memory(tmp_path: Path) -> None:
    data = tmp_path / "runbook_data"
    shutil.copytree(ROOT / "runbook_data", data)
    shutil.copy(INVALID / "alias-bomb.yaml", data / "alarms" / "extra.yaml")
    # 5 s of CPU and 1 GiB of address space: the unbounded reader needs far more of both.
    limits = "import resource as r; r.setrlimit(r.RLIMIT_CPU, (5, 5)); r.setrlimit(r.RLIMIT_AS, (2**30, 2**30))"
    proc = subprocess.run(
        [sys.executable, "-c", f"{limits}\nimport sys; from runbook.cli import main; sys.exit(main(sys.argv[1:]))",
         "--data", "runbook_data", "check"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr == (INVALID / "alias-bomb.expected.txt").read_text(encoding="utf-8")


def test_mkdocs_build_with_invalid_data_prints_only_the_located_lines(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project")
    shutil.copy(INVALID / "many-problems.yaml", project / "runbook_data" / "alarms" / "extra.yaml")
    proc = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "mkdocs"), "build", "--strict", "-q", "-d", str(tmp_path / "site")],
        cwd=project, capture_output=True, text=True, timeout=300,
        env={"PATH": "/usr/bin:/bin", "NO_MKDOCS_2_WARNING": "1", "HOME": str(tmp_path)},
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "Traceback" not in output
    for line in (INVALID / "many-problems.expected.txt").read_text(encoding="utf-8").splitlines()[:-1]:
        assert line in output
