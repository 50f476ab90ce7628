"""Read YAML keeping positions: every mapping gets a `__loc__` entry, every node a path → Loc."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.composer import Composer
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.events import AliasEvent
from ruamel.yaml.reader import ReaderError

from runbook.data import disk_cache
from runbook.errors import Loc, Problem

LOC_KEY = "__loc__"
PathKey = tuple[str | int, ...]

# Nodes a document may hold once every alias is expanded: anchors that nest aliases grow
# exponentially (a "billion laughs"), and the loader walks the expanded tree.
MAX_NODES = 100_000
# Nesting deeper than this is refused before Python's recursion limit is near.
MAX_DEPTH = 100
# Bytes a data file, and all of them together, may hold: parsing is ~0.6 s per MiB, and `runbook
# check` must stay within seconds whatever the input (today's largest file is 20 KiB).
MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_DATA_BYTES = 6 * 1024 * 1024
# Tags a data file may write out: YAML's core schema (and `!`, the non-specific tag).
CORE_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "map", "seq")}


class Refused(Exception):
    """A document the reader will not build: an alias bomb, a recursive alias, a foreign tag."""

    def __init__(self, mark: Any, message: str) -> None:
        super().__init__(message)
        self.mark = mark
        self.message = message


def _shown_tag(tag: str) -> str:
    prefix = "tag:yaml.org,2002:"
    return "!!" + tag[len(prefix) :] if tag.startswith(prefix) else tag


class _BoundedComposer(Composer):
    """ruamel's composer, counting the nodes the document would have with its aliases expanded."""

    def __init__(self, loader: Any = None) -> None:
        super().__init__(loader)
        self.expanded = 0
        self.sizes: dict[int, int] = {}

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.parser.peek_event()
        if isinstance(event, AliasEvent):
            target = self.anchors.get(event.anchor)
            if target is not None:
                size = self.sizes.get(id(target))
                if size is None:
                    raise Refused(event.start_mark, f"alias '*{event.anchor}' is inside the node it refers to")
                self.expanded += size
                if self.expanded > MAX_NODES:
                    raise Refused(
                        event.start_mark,
                        f"alias '*{event.anchor}' expands the document beyond {MAX_NODES} nodes "
                        f"(anchors nesting aliases); write the data out instead",
                    )
            return super().compose_node(parent, index)
        tag = getattr(event, "ctag", None)
        if tag is not None and str(tag) != "!" and str(tag) not in CORE_TAGS:
            raise Refused(
                event.start_mark,
                f"tag '{_shown_tag(str(tag))}' is not allowed: data files use plain YAML "
                f"(strings, numbers, booleans, null, lists, mappings)",
            )
        if self.depth >= MAX_DEPTH:
            raise Refused(event.start_mark, f"data nested deeper than {MAX_DEPTH} levels")
        before = self.expanded
        self.expanded += 1
        node = super().compose_node(parent, index)
        if getattr(event, "anchor", None) is not None:
            self.sizes[id(node)] = self.expanded - before
        return node


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
                pos = (node.lc.data or {}).get(key)
                if pos is None:  # a key merged in with `<<: *anchor`: it has no position of its own here
                    self.keys[child] = here
                    out[str(key)] = self.build(value, child, here)
                    continue
                kline, kcol, vline, vcol = pos
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


def _position(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of character `offset` of `text`."""
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _decode(raw: bytes, shown_as: str) -> tuple[str | None, list[Problem]]:
    try:
        return raw.decode("utf-8"), []
    except UnicodeDecodeError as exc:
        good = raw[: exc.start].decode("utf-8")
        line, col = _position(good, len(good))
        return None, [
            Problem(
                Loc(shown_as, line, col),
                f"not UTF-8: byte 0x{raw[exc.start]:02x} cannot be decoded; save the file as UTF-8",
            )
        ]


def strings(data: Any, path: PathKey = ()) -> Iterator[tuple[PathKey, str]]:
    """Every string value in plain YAML data (a Source's), with its path; positions skipped."""
    if isinstance(data, dict):
        for k, v in data.items():
            if k != LOC_KEY:
                yield from strings(v, (*path, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from strings(v, (*path, i))
    elif isinstance(data, str):
        yield path, data


# Each file parsed in this process, by its bytes: `mkdocs serve` reloads the data on every edit,
# and parsing is most of a load (3.5 of 5 s at 120 alarms x 3 environments), so only the files
# that changed are parsed again. A Source is never modified after reading.
_PARSED: dict[tuple[str, str], tuple[str, Source | None, list[Problem]]] = {}
# Parsed files kept on disk too (disk_cache, `keep_in`): a process that loads the data after
# one file changed (the gate, a check) parses that file only. Enough for every file of a large
# runbook and a few versions of each.
KEPT_PARSED = 512


def read(path: Path, shown_as: str, keep_in: Path | None = None) -> tuple[Source | None, list[Problem]]:
    """Parse one file; syntax errors come back as located problems instead of exceptions.

    ``keep_in``: the data folder whose disk cache keeps what each version of the file parsed to."""
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        return None, [Problem(Loc(shown_as), f"file is {size:,} bytes: a data file holds at most "
                                             f"{MAX_FILE_BYTES // 1024 // 1024} MiB (split it)")]
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    hit = _PARSED.get((str(path), shown_as))
    if hit is None or hit[0] != digest:
        hit = _PARSED[(str(path), shown_as)] = (digest, *_parse_kept(data, digest, shown_as, keep_in))
    return hit[1], list(hit[2])


def _parse_kept(data: bytes, digest: str, shown_as: str, keep_in: Path | None) -> tuple[Source | None, list[Problem]]:
    if keep_in is None or not disk_cache.enabled():
        return _parse(data, shown_as)
    key = disk_cache.inputs_key(extra=f"parsed\0{shown_as}\0{digest}")
    kept = disk_cache.get(keep_in, key, "parsed")
    if isinstance(kept, tuple) and len(kept) == 2:
        return kept[0], kept[1]
    parsed = _parse(data, shown_as)
    disk_cache.put(keep_in, key, parsed, "parsed", kept=KEPT_PARSED)
    return parsed


def _parse(data: bytes, shown_as: str) -> tuple[Source | None, list[Problem]]:
    text, problems = _decode(data, shown_as)
    if text is None:
        return None, problems
    if not text.strip() or all(not ln.strip() or ln.lstrip().startswith("#") for ln in text.splitlines()):
        return None, [Problem(Loc(shown_as), "file is empty, expected a YAML mapping")]
    yaml = YAML(typ="rt")
    yaml.Composer = _BoundedComposer
    try:
        node = yaml.load(text)
    except Refused as exc:
        return None, [Problem(Loc(shown_as, exc.mark.line + 1, exc.mark.column + 1), exc.message)]
    except ReaderError as exc:
        line, col = _position(text, exc.position)
        char = exc.character if isinstance(exc.character, int) else 0
        return None, [Problem(Loc(shown_as, line, col), f"character U+{char:04X} is not allowed in YAML")]
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
