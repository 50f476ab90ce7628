"""`runbook publish`: the built site to the runbook's bucket, with the commands the gate verified.

What runs is the data's own section (`maintenance` → `publishing-the-runbook`), rendered for the
environment with `<site-dir>` filled in: the same text the page shows and the gate runs against
moto, so a publish command that would not work fails the gate first. Publishing refuses a site
whose data fails `runbook check`, a site with a secret in it, and a gate report with a failure.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

from runbook.data.model import Catalog, CommandBlock, Section
from runbook.data.placeholders import substitute
from runbook.errors import Loc, Problem, RunbookError, shown_path

__all__ = ["PUBLISH_SECTION", "commands", "publish", "refusals"]

PUBLISH_SECTION = ("maintenance", "publishing-the-runbook")


def _section(sections: list[Section], section_id: str) -> Section | None:
    for s in sections:
        if s.id == section_id:
            return s
        found = _section(s.sections, section_id)
        if found is not None:
            return found
    return None


def commands(cat: Catalog, env: str, site: Path) -> list[str]:
    """The publish commands as rendered for `env`, the site folder filled in."""
    page_id, section_id = PUBLISH_SECTION
    section = _section(cat.page(page_id).sections, section_id)
    if section is None:
        raise RunbookError([Problem(cat.page(page_id).loc or Loc("runbook_data/procedures"),
                                    f"no section '{section_id}': the publish commands live there")])
    scope = cat.scope(env)

    def fill(name: str) -> str:
        if name == "site-dir":
            return shlex.quote(str(site).rstrip("/") + "/")
        raise RunbookError([Problem(Loc("runbook_data/inputs.yaml"), f"publish cannot fill in <{name}>")])

    return [substitute(b.command.code, scope, fill) for b in section.content if isinstance(b, CommandBlock)]


def refusals(site: Path, report: Path | None) -> list[Problem]:
    """Why this site must not be published (the data's own problems are `load`'s)."""
    from runbook.site.secret_scan import site_problems

    where = Loc(shown_path(site))
    if not (site / "index.html").is_file():
        return [Problem(where, "not a built site (no index.html): build it first (mkdocs build --strict)")]
    problems = site_problems(site)
    if report is not None:
        try:
            summary = json.loads(report.read_text(encoding="utf-8"))["summary"]
        except (OSError, ValueError, KeyError) as exc:
            return problems + [Problem(Loc(shown_path(report)), f"not a gate report: {exc}")]
        bad = summary.get("failed", 0) + summary.get("xpassed", 0)
        if bad:
            problems.append(Problem(Loc(shown_path(report)),
                                    f"the gate's report holds {bad} failure(s): fix them before publishing"))
    return problems


def publish(cat: Catalog, env: str, site: Path, report: Path | None, dry_run: bool = False) -> int:
    problems = refusals(site, report)
    if problems:
        raise RunbookError(problems)
    for code in commands(cat, env, site):
        print(f"+ {code.strip()}", flush=True)
        if not dry_run:
            done = subprocess.run(["bash", "-euo", "pipefail", "-c", code])
            if done.returncode != 0:
                print(f"runbook publish: the command above failed (exit status {done.returncode})")
                return 1
    return 0
