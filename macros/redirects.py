"""MkDocs hook: redirect pages for every alarm's CloudWatch name (per environment) and former ids."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.structure.files import Files

from runbook.data.load import load_cached
from runbook.site import links


def on_files(files: Files, config: Any) -> Files:
    # The published-URL list lives in docs/ beside the pages it protects, but is not content.
    listed = files.get_file_from_path(links.PUBLISHED.name)
    if listed is not None:
        files.remove(listed)
    return files


def on_post_build(config: Any) -> None:
    cat = load_cached(Path(config.config_file_path).parent / "runbook_data")
    site_dir = Path(config.site_dir)
    for page in links.redirects(cat, str(config.site_url or "")):
        target = site_dir / page.path
        if target.exists():
            there = target.read_text(encoding="utf-8")
            # A real page wins: a redirect never hides content (the link check reports the clash).
            # The same redirect is left as it is (a dirty build checks only what it writes).
            if there == page.html or not links.is_redirect(there):
                continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(page.html, encoding="utf-8")
