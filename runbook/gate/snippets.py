"""Code blocks of rendered pages: where each one is, which environment it belongs to, what it claims.

Blocks are read from the pages as rendered (after mkdocs-macros), but located in the file of
docs/ their author edits (see :class:`SourceLines`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from difflib import SequenceMatcher
from itertools import pairwise
from pathlib import Path

from runbook.data.placeholders import FILL_IN
from runbook.site.annotation import PATTERN as _ANNOTATION
from runbook.site.annotation import Annotation, AnnotationError
from runbook.site.build import Source, kept_source

SHELL_LANGS = {"bash", "sh", "shell", "console", "zsh"}
PYTHON_LANGS = {"python", "py", "python3"}

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<lang>[\w+.-]*)(?P<rest>.*)$")
_TAB = re.compile(r'^(?P<indent>[ ]*)===[+!]?[ ]+"(?P<label>[^"]*)"')
_FRONT_ENV = re.compile(r"^env:\s*['\"]?(?P<env>[\w-]+)['\"]?\s*$")


class UnclosedFence(AnnotationError):
    """A code fence that is never closed: located like a bad annotation (page:line: ...)."""


@dataclass(frozen=True)
class Snippet:
    """One code block for one environment, as an engineer would copy it."""

    page: str  # shown path, e.g. docs/alarms/lambda-errors.md
    # 1-based line of the opening fence. A page with a file in docs/: a block written there is
    # at its line in that file, one a macro made there (no origin) at the macro call. A block
    # generated from runbook_data (`origin` says where), or a page with no file: its line in
    # the rendered page.
    line: int
    env: str
    lang: str  # "bash", "python", or the block's own language when not executable
    text: str  # the code as rendered (dedented), fill-ins still as <name>
    annotation: Annotation = field(default_factory=Annotation, hash=False, compare=False)
    # The block that undoes this one (shown before it, marked `undo`): run right after it.
    undo: Snippet | None = field(default=None, hash=False, compare=False)

    @property
    def origin(self) -> str | None:
        """The runbook_data file:line the block was generated from."""
        return self.annotation.origin

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}[{self.env}]"

    @property
    def executable(self) -> bool:
        return self.lang in ("bash", "python")

    def fill_ins(self) -> list[str]:
        return sorted({m.group(1) for m in FILL_IN.finditer(self.text)})


def _console_commands(text: str) -> str:
    """Commands of a console transcript: `$ ` lines (and their continuations), without output."""
    out: list[str] = []
    cont = False
    for line in text.splitlines():
        if line.startswith("$ "):
            out.append(line[2:])
            cont = line.rstrip().endswith("\\")
        elif cont:
            out.append(line)
            cont = line.rstrip().endswith("\\")
    return "\n".join(out) + ("\n" if out else "")


def _normalise(lang: str, text: str) -> tuple[str, str]:
    low = lang.lower()
    if low == "console":
        return "bash", _console_commands(text)
    if low in SHELL_LANGS:
        return "bash", text
    if low in PYTHON_LANGS:
        return "python", text
    return (low or "text"), text


def _front_matter(lines: list[str], default_env: str) -> tuple[int, str]:
    """(index of the first line after the page's YAML front matter, the page's `env:`)."""
    if lines and lines[0].strip() == "---":
        env = default_env
        for i in range(1, len(lines)):
            if lines[i].strip() == "---":
                return i + 1, env
            m = _FRONT_ENV.match(lines[i])
            if m:
                env = m.group("env")
    return 0, default_env


def _block_end(lines: list[str], i: int, mark: str) -> int:
    """Index of the line closing the fence ``mark`` opened at line ``i``; len(lines) if none."""
    j = i + 1
    while j < len(lines):
        close = lines[j].strip()
        if close.startswith(mark[0] * len(mark)) and set(close) == {mark[0]}:
            break
        j += 1
    return j


BlockKey = tuple[str | None, tuple[str, ...]]


def _raw_blocks(lines: list[str], start: int) -> list[tuple[int, BlockKey]]:
    """Every fenced block from line ``start`` on, as written: (index of its opening fence,
    (the marker line right above it or None, its lines from fence to closing fence)).
    Lenient (a source page may hold template text): an unclosed fence ends the list."""
    out: list[tuple[int, BlockKey]] = []
    marker: str | None = None
    i = start
    while i < len(lines):
        fence = _FENCE.match(lines[i])
        if fence:
            j = _block_end(lines, i, fence.group("fence"))
            if j >= len(lines):
                break
            out.append((i, (marker, tuple(line.rstrip() for line in lines[i : j + 1]))))
            marker, i = None, j + 1
            continue
        if lines[i].strip():
            marker = lines[i].strip() if _ANNOTATION.match(lines[i]) else None
        i += 1
    return out


class SourceLines:
    """Where the lines of a rendered page are in the docs/ file it was rendered from.

    Rendering changes a page in two ways only: mkdocs takes the front matter off (the first
    ``source.body_line`` lines; what mkdocs-macros is given starts after it), and mkdocs-macros
    replaces each ``{{ ... }}`` by its output (``{% ... %}`` tags by what they make). Everything
    else is copied verbatim and in order. So:

    - :meth:`line`: a line diff of the source (after the front matter) against the rendered
      page places every line. A line both have is at its own line; a line only the rendered
      page has (a macro's output) is at the first line with ``{{`` or ``{%`` of the source
      lines it replaced: the macro call.
    - :meth:`fence`: a block written in the source is, verbatim, a block of the rendered page,
      and its fence line is its line in the source. Blocks are compared by their exact text
      (fence to closing fence, and the marker line right above it). A rendered block the diff
      puts on a source block with the same text is that block; the others are matched by their
      text, in order, among the blocks between two matched ones (so a block written twice is
      matched occurrence by occurrence). A rendered block matched to none was generated.
    """

    def __init__(self, rendered: list[str], source: Source) -> None:
        lines = source.text.splitlines()
        first = min(source.body_line, len(lines))
        body = lines[first:]
        self._lines: list[int] = [first] * len(rendered)  # rendered index -> source index
        same = [False] * len(rendered)  # the rendered line is the source line it is placed at
        for tag, i1, i2, j1, j2 in SequenceMatcher(None, body, rendered, autojunk=False).get_opcodes():
            if tag == "equal":
                self._lines[j1:j2] = range(first + i1, first + i2)
                same[j1:j2] = [True] * (j2 - j1)
            elif j2 > j1:  # made by rendering: at the macro call it replaced (else next to it)
                call = next((i for i in range(i1, i2) if "{{" in body[i] or "{%" in body[i]), None)
                at = call if call is not None else (i1 if i2 > i1 else max(i1 - 1, 0))
                self._lines[j1:j2] = [first + at] * (j2 - j1)
        ours, theirs = _raw_blocks(rendered, 0), _raw_blocks(lines, first)
        written = dict(theirs)
        self._fences = {i: self._lines[i] for i, key in ours if same[i] and written.get(self._lines[i]) == key}
        anchors = [(-1, -1), *sorted(self._fences.items()), (len(rendered), len(lines))]
        for (r0, s0), (r1, s1) in pairwise(anchors):
            left = [(i, k) for i, k in ours if r0 < i < r1]
            right = [(i, k) for i, k in theirs if s0 < i < s1]
            if not (left and right):
                continue
            matcher = SequenceMatcher(None, [k for _, k in left], [k for _, k in right], autojunk=False)
            for a, b, n in matcher.get_matching_blocks():
                self._fences.update((left[a + k][0], right[b + k][0]) for k in range(n))

    def line(self, index: int) -> int:
        """1-based source line of the rendered page's line ``index`` (0-based)."""
        return self._lines[index] + 1 if 0 <= index < len(self._lines) else index + 1

    def fence(self, index: int) -> int | None:
        """1-based source line of the block opening at rendered line ``index``, if written there."""
        found = self._fences.get(index)
        return None if found is None else found + 1


def extract(
    markdown: str, page: str, envs: Iterable[str], default_env: str, source: Source | None = None
) -> list[Snippet]:
    """Every fenced block of a rendered page, one Snippet per environment it belongs to.

    ``source``: the docs/ file the page was rendered from (its front matter gives the page's
    `env:`), to report lines of that file (:class:`SourceLines`); without it, lines are the
    page's own (``markdown`` is then read as the page, front matter included)."""
    env_names = set(envs)
    lines = markdown.splitlines()
    if source is None:
        start, page_env = _front_matter(lines, default_env)
    else:  # mkdocs took the front matter off the rendered page: read it in the source
        start, (_, page_env) = 0, _front_matter(source.text.splitlines(), default_env)
    mapped = SourceLines(lines, source) if source is not None else None

    def where(i: int) -> int:
        """The reported line of rendered line ``i``."""
        return mapped.line(i) if mapped else i + 1

    def fence_line(i: int) -> int:
        """The reported line of a block opening at rendered line ``i``."""
        return (mapped.fence(i) or mapped.line(i)) if mapped else i + 1

    tabs: list[tuple[int, str]] = []  # open content tabs: (indent of the label, label)
    pending: Annotation | None = None
    out: list[Snippet] = []
    rendered_lines: list[int] = []
    i = start
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        indent = len(line) - len(line.lstrip(" "))
        if stripped:
            while tabs and indent <= tabs[-1][0] and not (_TAB.match(line) and indent == tabs[-1][0]):
                tabs.pop()
        tab = _TAB.match(line)
        if tab:
            if tabs and tabs[-1][0] == indent:
                tabs.pop()
            tabs.append((indent, tab.group("label")))
            i += 1
            continue
        ann = _ANNOTATION.match(line)
        if ann:
            pending = Annotation.parse(ann.group("json"), f"{page}:{where(i)}")
            i += 1
            continue
        fence = _FENCE.match(line)
        if fence:
            mark, fence_indent = fence.group("fence"), fence.group("indent")
            j = _block_end(lines, i, mark)
            if j >= len(lines):
                raise UnclosedFence(f"{page}:{where(i)}: code fence opened here is never closed")
            body = [ln[len(fence_indent) :] if ln.startswith(fence_indent) else ln.lstrip() for ln in lines[i + 1 : j]]
            lang, text = _normalise(fence.group("lang"), "\n".join(body) + "\n")
            env_tab = next((label for _, label in reversed(tabs) if label in env_names), None)
            annotation = pending or Annotation()
            out.append(
                Snippet(
                    page=page,
                    # A block generated from the data keeps its rendered line (its origin says
                    # where it comes from): a page of such blocks is one macro call.
                    line=i + 1 if annotation.origin else fence_line(i),
                    env=env_tab or page_env,
                    lang=lang,
                    text=text,
                    annotation=annotation,
                )
            )
            rendered_lines.append(i + 1)
            pending = None
            i = j + 1
            continue
        if stripped and not stripped.startswith("<!--"):
            pending = None
        i += 1
    if len({(s.line, s.env) for s in out}) < len(out):
        # Two blocks of one environment at one line (say, two calls of a macro on one line, or a
        # source line that is also a generated block's rendered line): ids must stay unique, so
        # this page keeps its rendered lines.
        out = [replace(s, line=n) for s, n in zip(out, rendered_lines, strict=True)]
    return _pair_undos(out)


def _pair_undos(snippets: list[Snippet]) -> list[Snippet]:
    """Each `undo` block joins the next block of its environment, the command it undoes."""
    out: list[Snippet] = []
    waiting: dict[str, Snippet] = {}
    for s in snippets:
        if s.annotation.undo:
            if s.env in waiting:
                raise AnnotationError(f"{s.page}:{waiting[s.env].line}: undo block followed by another undo block")
            waiting[s.env] = s
        elif s.env in waiting:
            out.append(replace(s, undo=waiting.pop(s.env)))
        else:
            out.append(s)
    for s in waiting.values():
        raise AnnotationError(f"{s.page}:{s.line}: undo block with no command after it to undo")
    return out


def extract_dir(rendered: Path, shown_prefix: str, envs: Iterable[str], default_env: str) -> list[Snippet]:
    """All snippets of a folder of rendered pages (kept by the site build), in page order, each
    located in the docs/ file its page was rendered from when the build kept that file."""
    envs = list(envs)
    out: list[Snippet] = []
    for path in sorted(rendered.rglob("*.md")):
        rel = path.relative_to(rendered).as_posix()
        out += extract(path.read_text(encoding="utf-8"), f"{shown_prefix}{rel}", envs, default_env,
                       kept_source(path))
    return out
