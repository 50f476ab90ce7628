"""Code blocks of rendered pages: where each one is, which environment it belongs to, what it claims."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from runbook.data.placeholders import FILL_IN
from runbook.site.annotation import PATTERN as _ANNOTATION
from runbook.site.annotation import Annotation, AnnotationError

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
    line: int  # 1-based line of the opening fence in the rendered page
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


def extract(markdown: str, page: str, envs: Iterable[str], default_env: str) -> list[Snippet]:
    """Every fenced block of a rendered page, one Snippet per environment it belongs to."""
    env_names = set(envs)
    lines = markdown.splitlines()
    start = 0
    page_env = default_env
    if lines and lines[0].strip() == "---":
        for i in range(1, len(lines)):
            if lines[i].strip() == "---":
                start = i + 1
                break
            m = _FRONT_ENV.match(lines[i])
            if m:
                page_env = m.group("env")
    tabs: list[tuple[int, str]] = []  # open content tabs: (indent of the label, label)
    pending: Annotation | None = None
    out: list[Snippet] = []
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
            pending = Annotation.parse(ann.group("json"), f"{page}:{i + 1}")
            i += 1
            continue
        fence = _FENCE.match(line)
        if fence:
            mark, fence_indent = fence.group("fence"), fence.group("indent")
            body: list[str] = []
            j = i + 1
            while j < len(lines):
                close = lines[j].strip()
                if close.startswith(mark[0] * len(mark)) and set(close) == {mark[0]}:
                    break
                body.append(lines[j][len(fence_indent) :] if lines[j].startswith(fence_indent) else lines[j].lstrip())
                j += 1
            if j >= len(lines):
                raise UnclosedFence(f"{page}:{i + 1}: code fence opened here is never closed")
            lang, text = _normalise(fence.group("lang"), "\n".join(body) + "\n")
            env_tab = next((label for _, label in reversed(tabs) if label in env_names), None)
            out.append(
                Snippet(
                    page=page,
                    line=i + 1,
                    env=env_tab or page_env,
                    lang=lang,
                    text=text,
                    annotation=pending or Annotation(),
                )
            )
            pending = None
            i = j + 1
            continue
        if stripped and not stripped.startswith("<!--"):
            pending = None
        i += 1
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
    """All snippets of a folder of rendered pages, in page then line order."""
    envs = list(envs)
    out: list[Snippet] = []
    for path in sorted(rendered.rglob("*.md")):
        rel = path.relative_to(rendered).as_posix()
        out += extract(path.read_text(encoding="utf-8"), f"{shown_prefix}{rel}", envs, default_env)
    return out
