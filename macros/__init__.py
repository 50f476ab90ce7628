"""mkdocs-macros edge: exposes the catalog's renderers to pages; all logic lives in runbook.render."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

from runbook.data import placeholders
from runbook.data.load import load_cached
from runbook.site import render

# Template text that must never reach a reader: a `{{ ... }}` / `{% ... %}` left unrendered.
LEFTOVER_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}")


def define_env(env: Any) -> None:
    root = Path(env.project_dir) / "runbook_data"

    def cat() -> Any:
        return load_cached(root)

    env.variables["environments"] = [e.name for e in cat().environments]

    @env.macro
    def alarm_page(alarm_id: str) -> str:
        return render.alarm_page(cat(), alarm_id)

    @env.macro
    def alarm_index() -> str:
        return render.alarm_index(cat())

    @env.macro
    def procedure_page(page_id: str) -> str:
        return render.procedure_page(cat(), page_id)

    @env.macro
    def escalation_page() -> str:
        return render.escalation_page(cat())

    @env.macro
    def command(code: str, lang: str = "bash") -> str:
        """A command written in a page by hand, shown once per environment."""
        return render.adhoc_command(cat(), code, lang)

    @env.macro
    def value(name: str) -> str:
        """An environment value in prose (labelled per environment where they differ)."""
        return render.prose(cat(), "{" + name + "}")


def on_post_page_macros(env: Any) -> None:
    """Refuse a page with template or placeholder text left, and keep a copy for the gate."""
    markdown: str = env.markdown
    page = env.page.file.src_uri
    problems = []
    for lineno, line in enumerate(markdown.splitlines(), 1):
        for m in [*LEFTOVER_JINJA.finditer(line), *placeholders.find(line)]:
            problems.append(f"docs/{page}:{lineno}:{m.start() + 1}: unresolved template text '{m.group(0)}'")
    if problems:
        # A located message and a failed build, not a traceback.
        raise PluginError("\n".join(sorted(problems)))
    capture = os.environ.get("RUNBOOK_CAPTURE_DIR")
    if capture:
        out = Path(capture) / page
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(markdown, encoding="utf-8")
