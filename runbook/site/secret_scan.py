"""No secrets in the site: the hand-written pages of docs/ and every text file of a built site.

The data is scanned when it is loaded (runbook.data.secrets); what reaches a page otherwise is
a hand-written page (or asset) of docs/, or the theme and hooks. So:

* `build_problems` (the build's last hook): docs/ files at their own line and column, plus
  whatever the built site holds that docs/ does not (located in the built file);
* `site_problems` (`runbook check --site DIR`): a built site alone, e.g. the artifact about to be
  published.

A built HTML page is scanned as it is (a password can sit in an href) and as its visible text,
tags removed and entities decoded (highlighted code splits `KEY=value` across spans, quotes
become `&quot;`). The built files are scanned with the format detectors only (exact shapes of
keys and tokens); docs/ sources also with the keyword and entropy heuristics.
"""

from __future__ import annotations

import functools
import html
import importlib.util
import re
from pathlib import Path

from runbook.data.secrets import Finding, problem, scan_text
from runbook.errors import Problem, shown_path

# What a site serves as text; images, fonts and archives are not read.
TEXT_SUFFIXES = frozenset(
    {".html", ".htm", ".xml", ".json", ".js", ".mjs", ".css", ".txt", ".md", ".svg", ".map", ".yml", ".yaml",
     ".webmanifest"}
)
_TAG = re.compile(r"<[^>]*>")
_ENTITY = re.compile(r"&(?:#[0-9]+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);")


def visible_text(page: str) -> str:
    """A page's text as a reader sees and copies it, line for line with the page's source."""
    text = _TAG.sub(lambda m: "\n" * m.group().count("\n"), page)
    return _ENTITY.sub(lambda m: html.unescape(m.group()).replace("\n", " "), text)


def scan_file(path: Path, *, heuristics: bool) -> list[Finding]:
    text = path.read_bytes().decode("utf-8", errors="replace")
    shown = shown_path(path)
    found = scan_text(text, shown, heuristics=heuristics)
    if path.suffix in (".html", ".htm"):
        found += scan_text(visible_text(text), shown, heuristics=False, lines=text.split("\n"))
    # The same secret on one line, seen in the markup and in the text: one finding.
    unique: dict[tuple[int, str, str], Finding] = {}
    for f in sorted(found):
        unique.setdefault((f.loc.line, f.kind, f.digest), f)
    return sorted(unique.values())


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix in TEXT_SUFFIXES and p.is_file())


@functools.cache
def _theme_dir() -> Path | None:
    spec = importlib.util.find_spec("material")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "templates"


def _from_theme(path: Path, site_dir: Path) -> bool:
    """A file the theme (mkdocs-material) ships, copied unchanged: its scripts, styles and their maps
    (two thirds of a site's bytes) hold nothing of the project's."""
    theme = _theme_dir()
    if theme is None:
        return False
    shipped = theme / path.relative_to(site_dir)
    try:
        return shipped.stat().st_size == path.stat().st_size and shipped.read_bytes() == path.read_bytes()
    except OSError:
        return False


def scan_site(site_dir: Path, since: float | None = None) -> list[Finding]:
    """``since``: only the files written from then on (a dirty build: the rest were scanned when
    they were written)."""
    return [
        f
        for p in _files(site_dir)
        if (since is None or p.stat().st_mtime >= since) and not _from_theme(p, site_dir)
        for f in scan_file(p, heuristics=False)
    ]


def scan_docs(docs_dir: Path) -> list[Finding]:
    return [f for p in _files(docs_dir) for f in scan_file(p, heuristics=True)]


def site_problems(site_dir: Path) -> list[Problem]:
    """Every secret in a built site, located in its files."""
    return [problem(f, "the built site") for f in scan_site(site_dir)]


def build_problems(docs_dir: Path, site_dir: Path, since: float | None = None) -> list[Problem]:
    """Secrets of a build: in docs/ at the line a person edits; in the built site only what docs/ lacks
    (``since``: only the site's files written from then on)."""
    in_docs = scan_docs(docs_dir)
    known = {f.digest for f in in_docs}
    return [problem(f, "the page") for f in in_docs] + [
        problem(f, "the built site") for f in scan_site(site_dir, since) if f.digest not in known
    ]
