"""Read YAML keeping positions: every mapping gets a `__loc__` entry, every node a path → Loc."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from runbook.errors import Loc, Problem

LOC_KEY = "__loc__"
PathKey = tuple[str | int, ...]


class Anchor:
    """Where a mapping sits: lets a validated node point at any of its keys or items later."""

    def __init__(self, source: Source, path: PathKey, loc: Loc) -> None:
        self.source = source
        self.path = path
        self.loc = loc

    def at(self, *sub: str | int) -> Loc:
        return self.source.loc((*self.path, *sub))

    def text_at(self, offset: int, *sub: str | int) -> Loc:
        return self.source.text_loc((*self.path, *sub), offset)

    def __repr__(self) -> str:
        return f"Anchor({self.loc})"


class Source:
    """One YAML file as plain Python data plus the position of every key and value."""

    def __init__(self, file: str, data: Any, lines: list[str]) -> None:
        self.file = file
        self.data = data
        self.lines = lines
        self.values: dict[PathKey, Loc] = {}
        self.keys: dict[PathKey, Loc] = {}

    def loc(self, path: PathKey, *, key: bool = False) -> Loc:
        """The position of the deepest node on `path` that exists (its key when `key`)."""
        if key and tuple(path) in self.keys:
            return self.keys[tuple(path)]
        for end in range(len(path), -1, -1):
            hit = self.values.get(tuple(path[:end]))
            if hit is not None:
                return hit
        return Loc(self.file)

    def text_loc(self, path: PathKey, offset: int) -> Loc:
        """The position of character `offset` of the string at `path` (block scalars too)."""
        start = self.loc(path)
        value = self._get(path)
        if not isinstance(value, str):
            return start
        line_no = value.count("\n", 0, offset)
        col_in_line = offset - (value.rfind("\n", 0, offset) + 1)
        indicator = self.lines[start.line - 1][start.col - 1 : start.col] if start.line <= len(self.lines) else ""
        if indicator in ("|", ">"):
            body = self.lines[start.line] if start.line < len(self.lines) else ""
            indent = len(body) - len(body.lstrip(" "))
            return Loc(self.file, start.line + 1 + line_no, indent + col_in_line + 1)
        if line_no == 0:
            quoted = indicator in ("'", '"')
            return Loc(self.file, start.line, start.col + col_in_line + (1 if quoted else 0))
        return Loc(self.file, start.line + line_no, 1)

    def _get(self, path: PathKey) -> Any:
        node = self.data
        for part in path:
            node = node[part]
        return node

    def build(self, node: Any, path: PathKey, here: Loc) -> Any:
        self.values[path] = here
        if isinstance(node, CommentedMap):
            out: dict[str, Any] = {LOC_KEY: Anchor(self, path, here)}
            for key, value in node.items():
                child = (*path, str(key))
                kline, kcol = node.lc.key(key)
                vline, vcol = node.lc.value(key)
                self.keys[child] = Loc(self.file, kline + 1, kcol + 1)
                out[str(key)] = self.build(value, child, Loc(self.file, vline + 1, vcol + 1))
            return out
        if isinstance(node, CommentedSeq):
            items = []
            for i, value in enumerate(node):
                iline, icol = node.lc.item(i)
                items.append(self.build(value, (*path, i), Loc(self.file, iline + 1, icol + 1)))
            return items
        return node


def read(path: Path, shown_as: str) -> tuple[Source | None, list[Problem]]:
    """Parse one file; syntax errors come back as located problems instead of exceptions."""
    text = path.read_text(encoding="utf-8")
    if not text.strip() or all(not ln.strip() or ln.lstrip().startswith("#") for ln in text.splitlines()):
        return None, [Problem(Loc(shown_as), "file is empty, expected a YAML mapping")]
    yaml = YAML(typ="rt")
    try:
        node = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = " ".join(str(x) for x in (exc.context, exc.problem) if x)
        return None, [Problem(Loc(shown_as, line, col), f"YAML syntax error: {_tidy(what)}")]
    if not isinstance(node, CommentedMap):
        return None, [Problem(Loc(shown_as), "expected a YAML mapping at the top of the file")]
    source = Source(shown_as, None, text.splitlines())
    source.data = source.build(node, (), Loc(shown_as, 1, 1))
    return source, []


def _tidy(what: str) -> str:
    what = " ".join(what.split())
    if "'\\t'" in what:
        return "tab character used for indentation; YAML indents with spaces"
    dup = re.search(r'found duplicate key "([^"]*)"', what)
    if dup:
        return f"duplicate key '{dup.group(1)}'"
    return what
