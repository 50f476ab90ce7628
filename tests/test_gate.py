"""The doc-verification gate over the whole site: one test per code block × environment.

Blocks are collected from the rendered site when this module is imported; the gate then runs
all of them once, in parallel sandboxes, and each test reports its own block's verdict.
"""

from __future__ import annotations

import os

import pytest

from runbook.gate import run as gate
from runbook.gate.snippets import Snippet

from .conftest import ROOT

PLAN = gate.plan(ROOT / "mkdocs.yml")


@pytest.fixture(scope="module")
def verdicts() -> dict[str, gate.Result]:
    aws_cli = os.environ.get("RUNBOOK_AWS_CLI", "/usr/bin/aws")
    try:
        results = gate.run(PLAN, aws_cli=aws_cli)
    except gate.GateError as exc:
        pytest.fail(f"the gate could not run: {exc}")
    return {r.key: r for r in results}


@pytest.mark.gate
@pytest.mark.parametrize("snippet", PLAN.snippets, ids=[s.id for s in PLAN.snippets])
def test_block(snippet: Snippet, verdicts: dict[str, gate.Result]) -> None:
    r = verdicts[snippet.id]
    reason = r.message.strip().splitlines()[0] if r.message.strip() else ""
    if r.status == "skipped":
        pytest.skip(f"{snippet.id}: {reason}")
    if r.status == "xfailed":
        pytest.xfail(f"{snippet.id}: {reason}")
    if r.status != "passed":
        pytest.fail(
            f"{snippet.id} failed in the {r.tier} tier ({r.status})\n"
            f"  generated from: {r.origin or 'the page itself'}\n"
            f"  command as rendered:\n{_indent(r.command)}\n"
            f"  error:\n{_indent(r.message)}",
            pytrace=False,
        )


def test_every_block_of_every_environment_is_collected() -> None:
    envs = {s.env for s in PLAN.snippets}
    assert envs == {e.name for e in PLAN.catalog.environments}
    executable = [s for s in PLAN.snippets if s.executable]
    assert len(executable) >= 100


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.rstrip("\n").splitlines())
