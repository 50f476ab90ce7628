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
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from mkdocs.utils import CountHandler

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


def build(mkdocs_yml: Path, out: Path, *, docs_dir: Path | None = None, strict: bool = True,
          markdown_only: bool = False) -> Built:
    """Build into out/site, keeping rendered pages in out/rendered.

    ``markdown_only``: stop once the macros rendered every page (the gate reads the Markdown
    only): no HTML, so neither the links of the HTML nor the theme's templates are checked (the
    site's own build does that), and nothing is written to out/site; a warning until then (a
    macro's) still fails a strict build."""
    return start(mkdocs_yml, out, docs_dir=docs_dir, strict=strict, markdown_only=markdown_only).wait()


class Building:
    """A build under way in its child process (`start`); `wait` gives what it built."""

    TIMEOUT = 600.0

    def __init__(self, argv: list[str], cwd: Path, out: Path) -> None:
        self.out = out
        self._started = time.perf_counter()
        self._proc = subprocess.Popen(argv, cwd=cwd, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def stop(self) -> None:
        """End the build now if it still runs (its caller gave up on it)."""
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.communicate()

    def wait(self) -> Built:
        try:
            output, _ = self._proc.communicate(timeout=self.TIMEOUT)
        except BaseException:  # a timeout, an interrupt: no build outlives its caller
            self.stop()
            raise
        seconds = time.perf_counter() - self._started
        return Built(self.out / "site", self.out / "rendered", seconds, self._proc.returncode, output.strip())


def start(mkdocs_yml: Path, out: Path, *, docs_dir: Path | None = None, strict: bool = True,
          markdown_only: bool = False) -> Building:
    """`build`, started: the caller goes on while mkdocs runs."""
    argv = [sys.executable, "-m", "runbook.site.build", str(mkdocs_yml), str(out)]
    if docs_dir is not None:
        argv += ["--docs", str(Path(docs_dir).resolve())]
    if not strict:
        argv.append("--no-strict")
    if markdown_only:
        argv.append("--markdown-only")
    return Building(argv, Path(mkdocs_yml).resolve().parent, out)


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


class _PagesRendered(Exception):
    """Raised once every page is rendered, to end a markdown-only build there."""


def _stop_after_pages(config: Any) -> CountHandler:
    """Keep each page's Markdown once the macros rendered it (keep_rendered) and convert
    nothing, then end the build at mkdocs' `env` event (every page read and rendered), before
    the theme's templates and the search index; the handler returned counts the warnings
    logged until then (mkdocs' own strict count comes at the end)."""
    from mkdocs.plugins import BasePlugin
    from mkdocs.utils import CountHandler

    class StopAfterPages(BasePlugin):  # type: ignore[type-arg,no-untyped-call]
        def on_page_markdown(self, markdown: str, /, **_: Any) -> str:
            return ""  # after the macros' (registered last): kept already, not needed as HTML

        def on_env(self, env: Any, /, *, config: Any, files: Any) -> Any:
            raise _PagesRendered

    counter = CountHandler()
    counter.setLevel(logging.WARNING)
    logging.getLogger("mkdocs").addHandler(counter)
    config.plugins["runbook-stop-after-pages"] = StopAfterPages()  # registered last: runs last
    return counter


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
    p.add_argument("--markdown-only", action="store_true")
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
        config = load_config(str(args.mkdocs_yml), **overrides)
        counter = _stop_after_pages(config) if args.markdown_only else None
        try:
            mkdocs_build(config)
        except _PagesRendered:
            assert counter is not None
            if config.strict and (counts := counter.get_counts()):
                raise MkDocsException("Aborted with " + ", ".join(f"{n} {level.lower()}s" for level, n in counts)
                                      + " in strict mode!") from None
    except (MkDocsException, ValueError) as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    # Run as the imported module, whose _rendered_dir the macros see (not this __main__ copy).
    from runbook.site import build as _imported

    sys.exit(_imported._child(sys.argv[1:]))
