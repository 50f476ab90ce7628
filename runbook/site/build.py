"""The one way to build the site: mkdocs in a child process, each page's Markdown kept for the gate.

The gate, the link check and the tests all build through :func:`build`. The child
(``python -m runbook.site.build``) runs mkdocs in-process with the project's own config, and
the macros hand every rendered page to :func:`keep_rendered`, which writes it under the
folder this child was given. A child keeps mkdocs' logging and global state out of the
caller, and its output is exactly what ``mkdocs build`` prints.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from runbook.errors import Loc, Problem, RunbookError

# Set only inside the child; `mkdocs build` and `mkdocs serve` keep nothing.
_rendered_dir: Path | None = None


@dataclass(frozen=True)
class Built:
    site_dir: Path  # the HTML, as served
    rendered_dir: Path  # each page's Markdown after macros (what the gate reads), and its source (SOURCE_SUFFIX)
    seconds: float
    returncode: int
    output: str  # what mkdocs printed: located lines on failure

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def build(mkdocs_yml: Path, out: Path, *, docs_dir: Path | None = None, strict: bool = True) -> Built:
    """Build into out/site, keeping rendered pages in out/rendered."""
    argv = [sys.executable, "-m", "runbook.site.build", str(mkdocs_yml), str(out)]
    if docs_dir is not None:
        argv += ["--docs", str(Path(docs_dir).resolve())]
    if not strict:
        argv.append("--no-strict")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=Path(mkdocs_yml).resolve().parent, env=env, capture_output=True, text=True,
                          timeout=600)
    seconds = time.perf_counter() - start
    return Built(out / "site", out / "rendered", seconds, proc.returncode, (proc.stdout + proc.stderr).strip())


# Next to a kept page of docs/ (not a generated one): the file its author edits, for the gate to
# report lines of that file (`x.md` -> `x.md.source.json`; not `*.md`, so never taken for a page).
SOURCE_SUFFIX = ".source.json"


@dataclass(frozen=True)
class Source:
    """The docs/ file a rendered page was made from, as mkdocs read it."""

    text: str
    # 0-based line of `text` where the Markdown that mkdocs-macros renders starts: mkdocs
    # strips the front matter (and the blank lines after it) before any plugin sees the page.
    body_line: int


def _body_line(source: str, body: str) -> int | None:
    """Where ``body`` (the page after mkdocs took its front matter off) starts in ``source``."""
    if not source.endswith(body):
        return None
    return source[: len(source) - len(body)].count("\n")


def keep_rendered(page: str, markdown: str, source: str | None = None, body: str | None = None) -> None:
    """Called by the macros for every page: keep its rendered Markdown when building for the gate.

    ``source``: the page's file in docs/ (None for a generated page); ``body``: the Markdown
    mkdocs-macros was given (the source without its front matter). Kept together, next to
    the page, as a :class:`Source`, when the body is the end of the source."""
    if _rendered_dir is None:
        return
    target = _rendered_dir / page
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(markdown, encoding="utf-8")
    first = _body_line(source, body) if source is not None and body is not None else None
    if first is not None:
        kept = {"text": source, "body_line": first}
        target.with_name(target.name + SOURCE_SUFFIX).write_text(json.dumps(kept), encoding="utf-8")


def kept_source(rendered_page: Path) -> Source | None:
    """The :class:`Source` kept next to a rendered page, or None (a generated page)."""
    path = rendered_page.with_name(rendered_page.name + SOURCE_SUFFIX)
    try:
        kept = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    return Source(str(kept["text"]), int(kept["body_line"]))


# ------------------------------------------------------------------ site_url


class _ConfigLoader(yaml.SafeLoader):
    """Reads mkdocs.yml, whose `!ENV` and `!!python/name:` tags are not plain YAML."""


def _any_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node)
    return None


_ConfigLoader.add_multi_constructor("", _any_tag)


def site_url(mkdocs_yml: Path) -> str:
    """mkdocs.yml's `site_url`, ending with a slash (alarm links are built on it)."""
    with open(mkdocs_yml, encoding="utf-8") as fh:
        config = yaml.load(fh, Loader=_ConfigLoader) or {}
    url = config.get("site_url") if isinstance(config, dict) else None
    if not isinstance(url, str) or not url.strip():
        raise RunbookError(
            [Problem(Loc(str(mkdocs_yml)), "site_url is not set: alarm descriptions link to <site_url>alarms/<id>/")]
        )
    url = url.strip()
    return url if url.endswith("/") else url + "/"


# ------------------------------------------------------------------ the child


def _child(argv: Sequence[str]) -> int:
    from mkdocs.commands.build import build as mkdocs_build
    from mkdocs.config import load_config
    from mkdocs.exceptions import MkDocsException

    global _rendered_dir
    p = argparse.ArgumentParser(prog="python -m runbook.site.build")
    p.add_argument("mkdocs_yml", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--docs", type=Path)
    p.add_argument("--no-strict", action="store_true")
    args = p.parse_args(argv)
    # Warnings and errors, as mkdocs prints them. Not `-q`: that level also hides warnings
    # from the strict mode's counter, so `mkdocs build -q --strict` passes a warning.
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)-8s-  %(message)s"))  # mkdocs' own, uncoloured
    logger = logging.getLogger("mkdocs")
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    overrides: dict[str, Any] = {"site_dir": str(args.out / "site")}
    if args.docs is not None:
        overrides["docs_dir"] = str(args.docs)
    if args.no_strict or args.docs is not None:
        overrides["strict"] = False
    _rendered_dir = args.out / "rendered"
    try:
        mkdocs_build(load_config(str(args.mkdocs_yml), **overrides))
    except (MkDocsException, ValueError) as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    # Run as the imported module, whose _rendered_dir the macros see (not this __main__ copy).
    from runbook.site import build as _imported

    sys.exit(_imported._child(sys.argv[1:]))
