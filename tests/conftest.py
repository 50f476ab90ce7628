"""Shared fixtures: the project root, one strict build of the site per test session, and the
one rule for tests that need the AWS CLI v2 or Linux namespaces (`requires_aws_cli`,
`requires_isolation` marks, or `require_aws_cli()` / `require_isolation()` in a fixture).

The rule: when RUNBOOK_AWS_CLI is set (`make test` and CI set it), a missing or unusable CLI,
or a machine where `unshare` cannot give the sandbox its namespaces, is a FAILURE that says
what is missing. Only when nothing was configured do such tests skip, with that reason.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path
from typing import NoReturn

import pytest

from runbook.gate.sandbox.sandbox import probe_isolation
from runbook.site.build import Built, build

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_AWS_CLI = "/usr/bin/aws"
CONFIGURED = "RUNBOOK_AWS_CLI"


def aws_cli_path() -> str:
    """The CLI the tests use: RUNBOOK_AWS_CLI, else Debian's."""
    return os.environ.get(CONFIGURED) or DEFAULT_AWS_CLI


def unavailable(reason: str) -> NoReturn:
    """The one rule: fail when RUNBOOK_AWS_CLI is set, skip (with the reason) when nothing was configured."""
    configured = os.environ.get(CONFIGURED)
    if configured:
        pytest.fail(f"{CONFIGURED}={configured} is set, so this test must run, but {reason}", pytrace=False)
    pytest.skip(f"{reason} (nothing configured: set {CONFIGURED} to make this a failure)")


@functools.cache
def aws_cli_problem(path: str, kind: str = "v2") -> str | None:
    """Why `path` cannot serve, or None if it is an AWS CLI v2 (kind "script": a Python-script one)."""
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60,
                             env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"})
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"the AWS CLI at {path} does not run ({type(exc).__name__}: {exc})"
    version = (out.stdout or out.stderr).strip()
    if not version.startswith("aws-cli/2."):
        return f"{path} is not the AWS CLI v2 (--version printed {version!r})"
    if kind == "script":
        with open(path, "rb") as f:
            if b"python" not in f.readline():
                return f"{path} is not a Python-script AWS CLI v2 (the fork server needs Debian's awscli)"
    return None


@functools.cache
def isolation_level() -> str:
    return probe_isolation()


# probe_isolation() answers "full" (bubblewrap works) or "none"; "netns" is what older tests
# ask for, and "full" gives it.
ISOLATION_RANK = {"none": 0, "netns": 1, "full": 2}
ISOLATION_NEEDS = dict.fromkeys(
    ("netns", "full"),
    "bubblewrap cannot make the gate's sandbox here (bwrap missing, or user namespaces not "
    "permitted; isolation is '{level}')",
)


def require_aws_cli(kind: str = "v2") -> str:
    """The CLI to use; the one rule (fail if configured, else skip) when it is unusable."""
    path = aws_cli_path()
    problem = aws_cli_problem(path, kind)
    if problem:
        unavailable(problem)
    return path


def require_isolation(level: str = "netns") -> str:
    """The isolation this machine permits; the one rule when it is weaker than `level`."""
    have = isolation_level()
    if ISOLATION_RANK[have] < ISOLATION_RANK[level]:
        unavailable(ISOLATION_NEEDS[level].format(level=have))
    return have


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "requires_aws_cli(kind='v2'): needs the AWS CLI v2 (kind 'script': "
                            "a Python-script one); fails if RUNBOOK_AWS_CLI is set and it is unusable")
    config.addinivalue_line("markers", "requires_isolation(level='netns'): needs the gate's bubblewrap "
                            "sandbox; fails if RUNBOOK_AWS_CLI is set and they are missing")


@pytest.hookimpl(tryfirst=True)  # before any fixture of the test is set up
def pytest_runtest_setup(item: pytest.Item) -> None:
    for mark in item.iter_markers("requires_aws_cli"):
        require_aws_cli(*mark.args, **mark.kwargs)
    for mark in item.iter_markers("requires_isolation"):
        require_isolation(*mark.args, **mark.kwargs)


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
