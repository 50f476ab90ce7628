"""MkDocs hooks: validate the data before anything is built, add one page per alarm, build the nav,
and refuse a built site that holds a secret."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from mkdocs.exceptions import Abort, PluginError
from mkdocs.plugins import event_priority
from mkdocs.structure.files import Files, InclusionLevel

from runbook.data.load import load_cached
from runbook.data.model import Catalog
from runbook.errors import RunbookError
from runbook.site import incremental, render, secret_scan

log = logging.getLogger("mkdocs.runbook")
# The build of this run (module state of the hooks: mkdocs serve loads them afresh per build).
_dirty: incremental.DirtyBuild | None = None


class InvalidData(PluginError, Abort):
    """Invalid runbook data: mkdocs prints only the message (Abort), no traceback, and exits 1.

    Still a PluginError for callers that expect a plugin's failure; `mkdocs serve` prints it on a
    rebuild and keeps serving the last good site.
    """


def _catalog(config: Any) -> Catalog:
    try:
        return load_cached(Path(config.config_file_path).parent / "runbook_data", config.site_url or "")
    except RunbookError as err:
        # Same lines as `runbook check`; the build stops instead of producing pages with holes.
        raise InvalidData(f"runbook data is invalid:\n{err}") from None


#: Up to this many alarms, the navigation lists each one under its group. Beyond, it lists only
#: the index ("All alarms", by group): the navigation is rendered into every page, so listing
#: each alarm made the site grow as pages x alarms (134,000 nav items at 300 alarms).
NAV_ALARMS = 60


def alarms_in_nav(cat: Catalog) -> bool:
    return len(cat.alarms) <= NAV_ALARMS


@event_priority(100)  # before mkdocs-macros, whose module loads the same data and would raise with a traceback
def on_config(config: Any) -> Any:
    logging.getLogger("mkdocs.commands.build").addFilter(incremental.DIRTY_NOTICE)
    cat = _catalog(config)
    alarms_nav: list[Any] = [{"All alarms": "alarms/index.md"}]
    if alarms_in_nav(cat):
        for g in cat.groups:
            alarms_nav.append({g.title: [{a.title: f"alarms/{a.id}.md"} for a in g.alarms]})
    nav = []
    for entry in config.nav or []:
        if isinstance(entry, dict) and entry.get("Alarms") == "alarms/index.md":
            entry = {"Alarms": alarms_nav}
        nav.append(entry)
    config.nav = nav
    return config


def on_files(files: Files, config: Any) -> Files:
    global _dirty
    cat = _catalog(config)
    # What a dirty build (make serve) needs to rebuild only the alarm pages an edit changes.
    key = incremental.site_key(Path(config.config_file_path), Path(config.docs_dir), cat, alarms_in_nav(cat))
    _dirty = build = incremental.DirtyBuild(cat, key, config.site_dir)
    incremental.always_rebuilt(files)
    # Not in the navigation: reached from the index, the alarm's own link and search.
    inclusion = InclusionLevel.UNDEFINED if alarms_in_nav(cat) else InclusionLevel.NOT_IN_NAV
    for a in cat.alarms:
        stub = (
            f"---\ntitle: {a.title}\nalarm: {a.id}\nsearch:\n  boost: 3\n"
            f"description: \"{a.summary.replace(chr(34), '')}\"\n---\n\n"
            f"# {a.title} (`{a.id}`)\n\n"
            f'{{{{ alarm_page("{a.id}") }}}}\n'
        )
        if files.get_file_from_path(f"alarms/{a.id}.md") is None:
            files.append(incremental.new_alarm_file(config, a.id, stub, build, inclusion=inclusion))
    return files


def on_page_content(html: str, page: Any, config: Any, files: Files) -> str:
    """Every page with commands opens with the environment switch (alarm pages place their own,
    under the severity box)."""
    if 'class="tabbed-set' not in html or "rb-env-switch" in html:
        return html
    switch = render.env_switch(_catalog(config))
    head, sep, rest = html.partition("</h1>")
    return head + sep + switch + rest if sep else switch + html


@event_priority(-100)  # last: after the redirect pages are written, so they are scanned too
def on_post_build(config: Any) -> None:
    """No secret in what is about to be published: docs/ pages at their own lines, then the built site."""
    if _dirty is not None:
        _dirty.merge_search_index()
    since = _dirty.written_since() if _dirty is not None else None
    problems = secret_scan.build_problems(Path(config.docs_dir), Path(config.site_dir), since)
    if problems:
        lines = "\n".join(str(p) for p in sorted(set(problems)))
        raise InvalidData(f"the site holds secrets (it must not be published):\n{lines}")
    if _dirty is None:
        return
    _dirty.committed()
    if _dirty.dirty:
        log.info(f"dirty build: {len(_dirty.pending) - len(_dirty.skipped)} of {len(_dirty.pending)} "
                 "alarm pages rebuilt, the others unchanged")
