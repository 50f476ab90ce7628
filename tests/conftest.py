"""Shared fixtures: the project root and one strict build of the site per test session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from runbook.site.build import Built, build

ROOT = Path(__file__).resolve().parent.parent


BuiltSite = Built


def build_site(project: Path, out: Path) -> Built:
    """The strict build of a project folder into out/site, rendered pages in out/rendered."""
    return build(project / "mkdocs.yml", out)


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
    built = build_site(ROOT, tmp_path_factory.mktemp("built"))
    assert built.ok, f"mkdocs build --strict failed:\n{built.output}"
    return built
