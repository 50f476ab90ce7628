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


def _check_within_5s_cpu(data_parent: Path) -> subprocess.CompletedProcess[str]:
    limits = "import resource as r; r.setrlimit(r.RLIMIT_CPU, (5, 5))"
    return subprocess.run(
        [sys.executable, "-c", f"{limits}\nimport sys; from runbook.cli import main; sys.exit(main(sys.argv[1:]))",
         "--data", "runbook_data", "check"],
        cwd=data_parent, capture_output=True, text=True, timeout=60,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )


def test_a_huge_file_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    data = tmp_path / "runbook_data"
    shutil.copytree(ROOT / "runbook_data", data)
    # One 20 MB line: ruamel alone needs ~12 s of CPU for it.
    (data / "procedures" / "huge.yaml").write_text("k: " + "a1b2" * 5_000_000 + "\n", encoding="utf-8")
    proc = _check_within_5s_cpu(tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith("runbook_data/procedures/huge.yaml:1:1: file is 20,000,004 bytes: "
                                  "a data file holds at most 2 MiB (split it)\n"), proc.stderr
    assert "Traceback" not in proc.stderr


def test_many_large_files_stop_at_the_total_bound(tmp_path: Path) -> None:
    data = tmp_path / "runbook_data"
    shutil.copytree(ROOT / "runbook_data", data)
    for i in range(10):  # each under the file bound, 19 MB together
        lines = "".join(f"# filler {i} {n:07d} {'x' * 80}\n" for n in range(20_000))
        (data / "procedures" / f"filler-{i}.yaml").write_text(lines + "page: x\n", encoding="utf-8")
    proc = _check_within_5s_cpu(tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "not read: the data files hold more than 6 MiB together" in proc.stderr
    assert "Traceback" not in proc.stderr
