"""`mkdocs serve --dirty` (``make serve``): an edit rebuilds the pages it changes, not the whole site.

In a dirty build mkdocs skips every page whose ``File.is_modified()`` is False. By default a
generated page is always modified and a hand-written one is judged by its mtime, which would
miss a data edit. Here:

* an alarm page (:class:`AlarmPageFile`) is modified when what it shows changed since it was
  last written: its own Markdown (rendered from the data, as the macro renders it), or what
  every page shows (:func:`site_key`: mkdocs.yml, the hand-written pages, the gate's report, the
  alarms listed in the navigation);
* a hand-written page is always modified (:func:`always_rebuilt`): its macros read the data.
  There are few of them and their number does not grow with the alarms.

mkdocs asks ``is_modified()`` only in a dirty build: a clean build (``make build``, the gate, CI)
renders nothing twice. A skipped page is not read again, so its search entries are carried over
from the previous build (:func:`merge_search_index`). What a build wrote counts only once the
build has succeeded (:func:`committed`); after a failed one, the next build rebuilds every page the
failure may have left behind.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

from runbook.data.model import Catalog
from runbook.site import escalation, render

__all__ = ["DIRTY_NOTICE", "AlarmPageFile", "DirtyBuild", "alarm_markdown", "always_rebuilt", "new_alarm_file",
           "site_key"]

SEARCH_INDEX = Path("search") / "search_index.json"

# Per written page (its absolute path in the site): the digest it was last written with, in a
# build that succeeded. Module state, because mkdocs serve loads the hooks afresh for every build.
_written: dict[str, str] = {}
_last_succeeded = False  # the last build of this process (what its site holds was all checked)
# Files keep the kernel's coarse clock: a file written just after a build's start may show a
# slightly earlier mtime.
CLOCK_SLACK = 1.0


def alarm_markdown(cat: Catalog, alarm_id: str) -> str:
    """An alarm page's body, as the page's macro renders it."""
    return render.alarm_page(cat, alarm_id, escalation.who_to_call(cat, cat.alarm(alarm_id).severity))


def site_key(config_file: Path, docs_dir: Path, cat: Catalog, alarms_in_nav: bool) -> str:
    """What every page of the site shows besides its own body: the config, the hand-written pages
    (their titles are in every page's navigation), the gate's report (RUNBOOK_REPORT), and the
    alarms when the navigation lists them."""
    h = hashlib.sha256()
    report = os.environ.get("RUNBOOK_REPORT", "")
    sources = [config_file, *sorted(docs_dir.rglob("*.md")), *([Path(report)] if report else [])]
    for path in sources:
        h.update(str(path).encode() + b"\0")
        try:
            h.update(path.read_bytes())
        except OSError:
            h.update(b"\1missing")
        h.update(b"\0")
    h.update(report.encode() + b"\0")
    if alarms_in_nav:
        h.update(json.dumps([(g.title, [(a.id, a.title) for a in g.alarms]) for g in cat.groups]).encode())
    return h.hexdigest()


class DirtyBuild:
    """One build's view of what changed: its site key, and which alarm pages it skips."""

    def __init__(self, cat: Catalog, key: str, site_dir: str) -> None:
        global _last_succeeded
        self.cat = cat
        self.key = key
        self.search_index = Path(site_dir) / SEARCH_INDEX
        self.pending: dict[str, str] = {}  # digests of what this build writes, once it succeeds
        self.skipped: list[AlarmPageFile] = []
        self.started = time.time()
        self.after_success, _last_succeeded = _last_succeeded, False
        try:  # the previous build's index (a dirty build does not clean the site), parsed if needed
            self.previous_search: str | None = self.search_index.read_text(encoding="utf-8")
        except OSError:
            self.previous_search = None

    def digest(self, f: AlarmPageFile) -> str:
        h = hashlib.sha256(self.key.encode())
        for part in (f.content_string, alarm_markdown(self.cat, f.alarm_id)):
            h.update(b"\0" + part.encode())
        return h.hexdigest()

    @property
    def dirty(self) -> bool:
        """mkdocs asked which pages changed: a dirty build."""
        return bool(self.pending)

    def written_since(self) -> float | None:
        """Where the site's checks (the secret scan) may start: the files this dirty build wrote,
        when the build before it succeeded (its files were checked); else None, all of them."""
        return self.started - CLOCK_SLACK if self.dirty and self.after_success else None

    def committed(self) -> None:
        """The build succeeded: what it wrote is what the site holds."""
        global _last_succeeded
        _written.update(self.pending)
        _last_succeeded = True

    def merge_search_index(self) -> None:
        """Put back the search entries of the pages this build skipped (mkdocs' search plugin
        indexed only the pages it built)."""
        if not self.skipped or self.previous_search is None:
            return
        try:
            index = json.loads(self.search_index.read_text(encoding="utf-8"))
            previous = json.loads(self.previous_search)
        except (OSError, ValueError):
            return
        kept = {f.url for f in self.skipped}
        carried = [d for d in previous.get("docs", [])
                   if str(d.get("location", "")).split("#", 1)[0] in kept]
        index["docs"] = [*index.get("docs", []), *carried]
        self.search_index.write_text(json.dumps(index, separators=(",", ":")), encoding="utf-8")


class AlarmPageFile(File):
    """A generated alarm page that a dirty build rebuilds only when what it shows changed."""

    alarm_id: str
    build: DirtyBuild
    _modified: bool | None = None

    def is_modified(self) -> bool:
        if self._modified is None:
            digest = self.build.digest(self)
            self._modified = _written.get(self.abs_dest_path) != digest or not os.path.isfile(self.abs_dest_path)
            self.build.pending[self.abs_dest_path] = digest
            if self._modified:  # about to be rewritten: unknown until this build succeeds
                _written.pop(self.abs_dest_path, None)
            else:
                self.build.skipped.append(self)
        return self._modified


def always_rebuilt(files: Files) -> None:
    """Hand-written pages: rebuilt by every dirty build, whatever their mtime (their macros
    read the data, which mkdocs does not know of)."""
    for f in files.documentation_pages():
        if not isinstance(f, AlarmPageFile):
            f.is_modified = _true  # type: ignore[method-assign]


def _true() -> bool:
    return True


def new_alarm_file(config: Any, alarm_id: str, stub: str, build: DirtyBuild, **kw: Any) -> AlarmPageFile:
    f = AlarmPageFile.generated(config, f"alarms/{alarm_id}.md", content=stub, **kw)
    assert isinstance(f, AlarmPageFile)
    f.alarm_id = alarm_id
    f.build = build
    return f


class _DirtyNotice(logging.Filter):
    """mkdocs warns of every dirty build ("inaccurate navigation and other links"), which
    ``--strict`` turns into a failure. This module is what keeps the pages, their navigation and
    the search index right in one, so that generic warning is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("A 'dirty' build is being performed")


DIRTY_NOTICE = _DirtyNotice()
