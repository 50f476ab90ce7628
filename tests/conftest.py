"""Shared fixtures: the project root and one strict build of the site per test session."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class BuiltSite:
    site_dir: Path  # the HTML, as served
    rendered_dir: Path  # each page's Markdown after macro rendering (what the gate reads)
    seconds: float


def build_site(project: Path, out: Path, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`mkdocs build --strict` of a project folder into out/site, capturing rendered pages in out/rendered."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "RUNBOOK_CAPTURE_DIR": str(out / "rendered")}
    env.update(extra_env or {})
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-f", str(project / "mkdocs.yml"),
         "-d", str(out / "site")],
        cwd=project, env=env, capture_output=True, text=True, timeout=300,
    )


def copy_project(dest: Path) -> Path:
    """A throw-away copy of the project that a test may change, break and build."""
    for name in ("docs", "runbook_data", "macros"):
        shutil.copytree(ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__", "schema"))
    shutil.copy(ROOT / "mkdocs.yml", dest / "mkdocs.yml")
    (dest / "runbook").symlink_to(ROOT / "runbook")
    return dest


@pytest.fixture(scope="session")
def project_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> BuiltSite:
    out = tmp_path_factory.mktemp("built")
    start = time.perf_counter()
    proc = build_site(ROOT, out)
    seconds = time.perf_counter() - start
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    return BuiltSite(out / "site", out / "rendered", seconds)
