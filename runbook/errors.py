"""Located problems in the runbook data, reported all at once as `path:line:col: message`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def shown_path(path: str | os.PathLike[str]) -> str:
    """A path as messages show it: relative to the working directory when inside it, else absolute."""
    rel = os.path.relpath(Path(path).resolve(), Path.cwd())
    if rel == ".." or rel.startswith(".." + os.sep):
        return str(Path(path).resolve())
    return rel.replace(os.sep, "/")


@dataclass(frozen=True, order=True)
class Loc:
    """A position in a source file; line and col are 1-based."""

    file: str
    line: int = 1
    col: int = 1

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True, order=True)
class Problem:
    loc: Loc
    message: str

    def __str__(self) -> str:
        return f"{self.loc}: {self.message}"


class RunbookError(Exception):
    """Raised with every problem found, so a user fixes them in one pass."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(set(problems))
        super().__init__("\n".join(str(p) for p in self.problems))


class GateError(Exception):
    """The verification gate itself cannot do its job (no CLI v2, a worker died...), as
    opposed to: a snippet failed."""
