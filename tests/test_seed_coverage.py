"""Every alarm and every AWS CLI operation of the hand-written seed runbook has a home in the data."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from runbook.data import placeholders
from runbook.data.load import load
from runbook.data.model import Catalog

# The hand-written runbook this project replaces, kept as a fixture; the shared original
# beside the repository (…/shared/seed), where present, must not have moved on without it.
SEED = Path(__file__).resolve().parent / "data/seed/kanjona-runbook.md"
SHARED_SEED = Path(__file__).resolve().parents[2] / "shared/seed/kanjona-runbook.md"

ALARM_NAME = re.compile(r"kanjona-\{env\}-[a-z0-9]+(?:-[a-z0-9]+)*")
FENCE = re.compile(r"^\s*```")
AWS_CALL = re.compile(r"(?<![\w-])aws\s+([a-z0-9][a-z0-9-]*)\s+([a-z0-9][a-z0-9-]*)")


def _seed_text() -> str:
    return SEED.read_text(encoding="utf-8")


def test_the_fixture_is_the_shared_seed() -> None:
    if not SHARED_SEED.is_file():
        pytest.skip(f"no shared seed beside the repository ({SHARED_SEED}) to compare the fixture with")
    assert SEED.read_text(encoding="utf-8") == SHARED_SEED.read_text(encoding="utf-8"), (
        "shared/seed/kanjona-runbook.md changed: copy it to tests/data/seed/ and bring the data up to date"
    )


def seed_alarm_names(text: str) -> set[str]:
    """Alarm names in headings, e.g. `#### Lambda Errors (`kanjona-{env}-lambda-errors`)`."""
    return {
        m.group(0) for line in text.splitlines() if line.lstrip().startswith("#") for m in ALARM_NAME.finditer(line)
    }


def code_blocks(text: str) -> list[str]:
    blocks: list[str] = []
    current: list[str] | None = None
    for line in text.splitlines():
        if FENCE.match(line):
            if current is None:
                current = []
            else:
                blocks.append("\n".join(current))
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def aws_calls(code: str) -> set[tuple[str, str]]:
    """(service, operation) of every `aws` invocation, comments and line continuations aside."""
    lines = [line for line in code.replace("\\\n", " ").splitlines() if not line.lstrip().startswith("#")]
    return {(m.group(1), m.group(2)) for m in AWS_CALL.finditer("\n".join(lines))}


@pytest.fixture(scope="module")
def seed() -> str:
    return _seed_text()


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load()


@pytest.fixture(scope="module")
def catalog_calls(catalog: Catalog) -> set[tuple[str, str]]:
    """Every (service, operation) the rendered shell commands run, in every environment."""
    calls: set[tuple[str, str]] = set()
    for env in catalog.environments:
        scope = catalog.scope(env.name)
        for cmd in catalog.commands():
            if cmd.shell is not None:
                text = placeholders.substitute(cmd.shell, scope, lambda name: f"<{name}>")
                calls |= aws_calls(text)
    return calls


def test_seed_is_parsed(seed: str) -> None:
    # Guards against a parser that finds nothing and so proves nothing.
    assert len(seed_alarm_names(seed)) >= 12
    assert len({c for block in code_blocks(seed) for c in aws_calls(block)}) >= 20


def test_every_seed_alarm_is_a_catalog_alarm(seed: str, catalog: Catalog) -> None:
    names = {a.name for a in catalog.alarms}
    missing = sorted(seed_alarm_names(seed) - names)
    assert not missing, f"seed alarms without a catalog alarm of that name: {missing}"


def test_every_seed_cli_operation_is_used_by_a_catalog_command(seed: str, catalog_calls: set[tuple[str, str]]) -> None:
    seed_calls = {c for block in code_blocks(seed) for c in aws_calls(block)}
    missing = sorted(f"aws {service} {op}" for service, op in seed_calls - catalog_calls)
    assert not missing, f"seed commands with no catalog command running them: {missing}"
