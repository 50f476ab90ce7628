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

    def github(self) -> str:
        """The problem as a GitHub Actions annotation on its file and line."""
        return github_annotation(self.loc, self.message)


def _escape(text: str, prop: bool = False) -> str:
    # GitHub's workflow-command escaping; a property value also escapes ':' and ','.
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if prop else text


def github_annotation(loc: Loc, message: str, level: str = "error", title: str | None = None) -> str:
    """`::error file=F,line=L,col=C,title=T::message`: GitHub shows it on that line of a pull request."""
    props = [f"file={_escape(loc.file, True)}", f"line={loc.line}", f"col={loc.col}"]
    if title:
        props.append(f"title={_escape(title, True)}")
    return f"::{level} {','.join(props)}::{_escape(message)}"


class RunbookError(Exception):
    """Raised with every problem found, so a user fixes them in one pass."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(set(problems))
        super().__init__("\n".join(str(p) for p in self.problems))


class GateError(Exception):
    """The verification gate itself cannot do its job (no CLI v2, a worker died...), as
    opposed to: a snippet failed."""
