"""The marker before each rendered code block: what the gate must know about it, typed.

Rendering writes it (``<!-- runbook: {json} -->`` on the line before the fence), the snippet
extractor parses it, the gate acts on it. A hand-written page may carry one too, so parsing
rejects unknown keys and wrong types instead of ignoring them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, fields
from typing import Any

from runbook.data.model import DEFAULT_TIMEOUT, MAX_TIMEOUT

# The whole marker line; the JSON object is group "json".
PATTERN = re.compile(r"^[ \t]*<!--\s*runbook:\s*(?P<json>\{.*\})\s*-->[ \t]*$")


class AnnotationError(ValueError):
    """A `<!-- runbook: ... -->` marker that is not a valid annotation."""


@dataclass(frozen=True)
class Annotation:
    origin: str | None = None  # runbook_data file:line the block was generated from
    skip: str | None = None  # the gate does not run it, for this reason
    xfail: str | None = None  # moto falls short: it must fail, for this reason
    expect: tuple[str, ...] = ()  # JMESPath expressions that must be non-empty on its JSON output
    stream: bool = False  # never ends by itself (`logs tail --follow`): judged on what it printed
    timeout: float = DEFAULT_TIMEOUT
    mutates: bool | None = None  # changes state; None: the gate decides from the calls
    gnu_only: str | None = None  # uses a GNU-only form on purpose, for this reason: not a portability failure
    undo: bool = False  # puts back what the next block changes: the gate runs it right after that block
    code_at: str | None = None  # runbook_data file:line:col of the code's first character (line k: line+k-1)

    def comment(self) -> str:
        """The marker line: origin always, every other field only where it is not the default."""
        meta: dict[str, Any] = {"origin": self.origin}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name != "origin" and value != f.default:
                meta[f.name] = list(value) if isinstance(value, tuple) else value
        return f"<!-- runbook: {json.dumps(meta, sort_keys=True)} -->"

    @classmethod
    def parse(cls, text: str, where: str) -> Annotation:
        """The annotation in a marker's JSON text; `where` (page:line) prefixes every error."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise AnnotationError(f"{where}: runbook annotation is not valid JSON: {exc.msg}") from None
        if not isinstance(data, dict):
            raise AnnotationError(f"{where}: runbook annotation must be a JSON object")
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key not in known:
                raise AnnotationError(
                    f"{where}: unknown runbook annotation key '{key}' (known: {', '.join(known)})"
                )
            values[key] = _typed(key, value, where)
        return cls(**values)


def _typed(key: str, value: Any, where: str) -> Any:
    def wrong(expected: str) -> AnnotationError:
        return AnnotationError(f"{where}: runbook annotation '{key}' must be {expected}, got {json.dumps(value)}")

    if key == "gnu_only" and not (isinstance(value, str) and value.strip()):
        raise wrong("the reason the command cannot be written for both GNU and BSD/macOS")
    if key in ("origin", "skip", "xfail", "gnu_only", "code_at"):
        if value is not None and not isinstance(value, str):
            raise wrong("a string")
        return value or None
    if key == "expect":
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise wrong("a string or a list of strings")
        return tuple(items)
    if key in ("stream", "mutates", "undo"):
        if not isinstance(value, bool) and not (key == "mutates" and value is None):
            raise wrong("true or false")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise wrong("a positive number of seconds")
    if value > MAX_TIMEOUT:
        raise wrong(f"at most {MAX_TIMEOUT:g} seconds")
    return float(value)
