"""Whether what a step printed reveals what its drill says it must (`finds:`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jmespath
import jmespath.exceptions
import regex

from runbook.data.model import Finding, Test
from runbook.gate.verdict import json_documents

SECONDS = 2.0  # a pattern that backtracks without end fails the finding instead of hanging the drill

SHOWN = 300  # characters of a step's output quoted when a finding fails


@dataclass(frozen=True)
class Found:
    ok: bool
    detail: str  # what matched, or why nothing did


def shortened(text: str, limit: int = SHOWN) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def holds(value: Any) -> bool:
    """A JMESPath's value that says yes: not false, null or empty (nor 0, which equals false)."""
    return value not in (None, False, [], {}, "")


def reveal(test: Test, output: str) -> Found:
    """A finding on a step's output (stdout of its commands, in order), or a recovery check on
    the answer of its read (as JSON)."""
    at_least = test.at_least if isinstance(test, Finding) else None
    if test.regex is not None:
        return _regex(test.regex, at_least, output)
    return _jmespath(test.jmespath or "", at_least, output)


def search(pattern: str, text: str) -> list[Any]:
    """Every match of `pattern` (multiline) in `text`, within SECONDS; TimeoutError past it."""
    return list(regex.compile(pattern, regex.MULTILINE).finditer(text, timeout=SECONDS))


def _regex(pattern: str, at_least: float | None, output: str) -> Found:
    try:
        matches = search(pattern, output)
    except TimeoutError:
        return Found(False, f"/{pattern}/ took longer than {SECONDS:g} s on what the step printed")
    if not matches:
        printed = shortened(output) or "(nothing)"
        return Found(False, f"/{pattern}/ matches nothing in what the step printed: {printed}")
    if at_least is None:
        return Found(True, f"/{pattern}/ matched {shortened(matches[0].group(0), 80)!r}")
    values = [v for m in matches if (v := _number(m.group(1) if m.groups() else m.group(0))) is not None]
    best = max(values, default=None)
    if best is None or best < at_least:
        return Found(False, f"/{pattern}/ gives {best if best is not None else 'no number'}, "
                            f"fewer than {at_least:g}: {shortened(output)}")
    return Found(True, f"/{pattern}/ gives {best:g} (at least {at_least:g})")


def _jmespath(expression: str, at_least: float | None, output: str) -> Found:
    documents = json_documents(output)
    if not documents:
        printed = shortened(output) or "(nothing)"
        return Found(False, f"`{expression}` needs JSON, and the step printed none: {printed}")
    for document in documents:
        try:
            value = jmespath.search(expression, document)
        except jmespath.exceptions.JMESPathError as exc:
            return Found(False, f"`{expression}` is not valid JMESPath: {exc}")
        if not holds(value):
            continue
        if at_least is not None:
            number = _number(value)
            if number is None or number < at_least:
                continue
        return Found(True, f"`{expression}` is {shortened(str(value), 80)}")
    wanted = f" (at least {at_least:g})" if at_least is not None else ""
    return Found(False, f"`{expression}` is empty{wanted} in what the step printed: {shortened(output)}")
