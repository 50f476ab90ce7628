"""mkdocs-macros edge: exposes the catalog's renderers to pages; all logic lives in runbook.site."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

from runbook.data import placeholders
from runbook.data.load import load_cached
from runbook.data.model import Catalog
from runbook.site import build, escalation, incremental, render, status
from runbook.site import platform_map as platform_map_mod


def _report() -> status.Report | None:
    """The gate's report this build shows (RUNBOOK_REPORT), or None: "not verified yet"."""
    path = os.environ.get("RUNBOOK_REPORT")
    try:
        return status.load_report(path)
    except (OSError, ValueError) as exc:
        raise PluginError(f"RUNBOOK_REPORT={path}: not a readable gate report ({exc})") from None


def define_env(env: Any) -> None:
    root = Path(env.project_dir) / "runbook_data"
    report = _report()
    env.variables["runbook_report"] = report

    def cat() -> Catalog:
        return load_cached(root)

    env.variables["environments"] = [e.name for e in cat().environments]

    def alarm_page(alarm_id: str) -> str:
        return incremental.alarm_markdown(cat(), alarm_id)

    def alarm_index() -> str:
        return render.alarm_index(cat())

    def procedure_page(page_id: str) -> str:
        return render.procedure_page(cat(), page_id)

    def escalation_page() -> str:
        return escalation.escalation_page(cat())

    def platform_map() -> str:
        """The platform map of the home page (Graphviz SVG, from the inventory and the alarms)."""
        return platform_map_mod.platform_map(cat())

    def command(code: str, lang: str = "bash", gnu_only: str | None = None) -> str:
        """A command written in a page by hand, shown once per environment (`gnu_only`: the
        reason it uses a form only GNU tools take)."""
        return render.adhoc_command(cat(), code, lang, gnu_only)

    def value(name: str) -> str:
        """An environment value in prose (labelled per environment where they differ)."""
        return render.prose(cat(), "{" + name + "}")

    def command_effects() -> str:
        """How many commands only read, change state or delete (IAM access levels)."""
        return render.command_effects(cat())

    def verification_claim() -> str:
        """What the last verification did, as the status page counts it (never "in production")."""
        return status.claim(report)

    def verification_status() -> str:
        """Every command block × environment with its result in the gate's report."""
        return status.status_page(report)

    macros: tuple[Callable[..., str], ...] = (
        alarm_page, alarm_index, procedure_page, escalation_page, platform_map, command, value,
        command_effects, verification_claim, verification_status,
    )
    for macro in macros:
        env.macro(macro)


def on_post_page_macros(env: Any) -> None:
    """Refuse a page with template or placeholder text left, and keep a copy for the gate."""
    markdown: str = env.markdown
    page: str = env.page.file.src_uri
    problems = [
        f"docs/{page}:{lineno}:{col}: unresolved template text '{text}'"
        for lineno, col, text in placeholders.leftovers(markdown)
    ]
    if problems:
        # A located message and a failed build, not a traceback.
        raise PluginError("\n".join(sorted(problems)))
    file = env.page.file
    source = file.content_string if file.generated_by is None else None  # the file its author edits
    build.keep_rendered(page, markdown, source, env.page.markdown)  # page.markdown: not yet rendered
    # What the gate did with each block, under it (the gate's copy above stays without it).
    c = load_cached(Path(env.project_dir) / "runbook_data")
    env.markdown = status.annotate(markdown, f"docs/{page}", [e.name for e in c.environments], c.default_env.name,
                                   env.variables.get("runbook_report"))
