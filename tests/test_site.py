"""The built site: one page per alarm, a tab per environment on every command, self-contained."""

from __future__ import annotations

import json
import re
import shutil
from collections import defaultdict
from pathlib import Path

import pytest

from runbook.data import placeholders
from runbook.data.load import load
from runbook.gate.snippets import extract_dir

from .conftest import ROOT, BuiltSite, build_site, copy_project

CATALOG = load(ROOT / "runbook_data")
ENVS = [e.name for e in CATALOG.environments]



def test_every_alarm_has_a_page_at_its_stable_url(built_site: BuiltSite) -> None:
    for alarm in CATALOG.alarms:
        page = built_site.site_dir / "alarms" / alarm.id / "index.html"
        assert page.is_file(), f"missing page for alarm {alarm.id}"
        html = page.read_text(encoding="utf-8")
        for env in ENVS:
            assert f"kanjona-{env}-{alarm.id}" in html


def test_every_generated_command_has_one_tab_per_environment(built_site: BuiltSite) -> None:
    snippets = extract_dir(built_site.rendered_dir, "docs/", ENVS, ENVS[0])
    by_origin: dict[tuple[str, str], set[str]] = defaultdict(set)
    for s in snippets:
        if s.origin and s.executable:
            by_origin[(s.page, s.origin)].add(s.env)
    assert len(by_origin) >= len(CATALOG.alarms)
    only = {f"{c.loc.file}:{c.loc.line}": set(c.only) for c in CATALOG.commands() if c.only and c.loc}
    for (page, origin), envs in by_origin.items():
        assert envs == only.get(origin, set(ENVS)), f"{page} block from {origin} has tabs {sorted(envs)}"


def test_alarm_pages_show_severity_and_all_sections(built_site: BuiltSite) -> None:
    for alarm in CATALOG.alarms:
        html = (built_site.site_dir / "alarms" / alarm.id / "index.html").read_text(encoding="utf-8")
        assert f'rb-sev rb-sev-{alarm.severity}"' in html
        for anchor in ("investigation", "resolution", "what-it-watches", "who-to-call", "related-alarms"):
            assert f'id="{anchor}"' in html, f"{alarm.id} lacks section {anchor}"


def test_no_placeholder_or_template_text_survives(built_site: BuiltSite) -> None:
    for page in built_site.rendered_dir.rglob("*.md"):
        assert list(placeholders.leftovers(page.read_text(encoding="utf-8"))) == [], page.name


def test_site_is_self_contained(built_site: BuiltSite) -> None:
    outside = re.compile(r"""<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)=["']?(?:https?:)?//""", re.I)
    for page in built_site.site_dir.rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        hits = [m.group(0) for m in outside.finditer(html) if 'rel="canonical"' not in m.group(0)]
        assert not hits, f"{page}: loads from an outside host: {hits[:3]}"
    for css in built_site.site_dir.rglob("*.css"):
        assert "fonts.googleapis" not in css.read_text(encoding="utf-8", errors="replace")


def test_search_index_holds_full_alarm_names(built_site: BuiltSite) -> None:
    index = json.loads((built_site.site_dir / "search" / "search_index.json").read_text(encoding="utf-8"))
    text_by_page: dict[str, str] = defaultdict(str)
    for doc in index["docs"]:
        text_by_page[doc["location"].split("#")[0]] += doc["title"] + " " + doc["text"]
    for alarm in CATALOG.alarms:
        text = text_by_page[f"alarms/{alarm.id}/"]
        assert f"kanjona-prod-{alarm.id}" in text and alarm.id in text


def test_adding_an_environment_is_one_yaml_entry(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project")
    envs_file = project / "runbook_data" / "environments.yaml"
    text = envs_file.read_text(encoding="utf-8")
    prod = text[text.index("  - name: prod") :]
    staging = prod.replace("name: prod", "name: staging").replace("title: Production", "title: Staging")
    staging = staging.replace('"222222222222"', '"333333333333"').replace("kanjona-prod-", "kanjona-staging-")
    envs_file.write_text(text.rstrip("\n") + "\n\n" + staging, encoding="utf-8")

    proc = build_site(project, tmp_path / "out")
    assert proc.ok, proc.output
    snippets = extract_dir(tmp_path / "out" / "rendered", "docs/", [*ENVS, "staging"], ENVS[0])
    per_env = defaultdict(int)
    for s in snippets:
        per_env[s.env] += 1
    assert per_env["staging"] > 0
    only_prod = sum(1 for c in CATALOG.commands() if c.only and "prod" in c.only)
    assert per_env["staging"] == per_env["prod"] - only_prod
    page = (tmp_path / "out" / "site" / "alarms" / "lambda-errors" / "index.html").read_text(encoding="utf-8")
    assert "kanjona-staging-lead-handler" in page and ">staging</label>" in page
    index = (tmp_path / "out" / "site" / "alarms" / "index.html").read_text(encoding="utf-8")
    assert "Name in staging" in index


@pytest.mark.parametrize("case", ["many-problems", "unknown-placeholder"])
def test_build_fails_with_the_same_located_messages(case: str, tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project")
    fixture = ROOT / "tests" / "data" / "invalid" / f"{case}.yaml"
    target = fixture.read_text(encoding="utf-8").splitlines()[0].removeprefix("# target: ")
    shutil.copy(fixture, project / "runbook_data" / target)
    proc = build_site(project, tmp_path / "out")
    assert proc.returncode != 0
    expected = fixture.with_suffix(".expected.txt").read_text(encoding="utf-8").splitlines()[:-1]
    for line in expected:
        assert line in proc.output
    assert not (tmp_path / "out" / "site" / "alarms").exists()


def test_a_placeholder_left_in_a_hand_written_page_fails_the_build_located(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project")
    (project / "docs" / "notes.md").write_text("# Notes\n\nThe function {lead_handler} and {{ '{{' }} x }}.\n")
    proc = build_site(project, tmp_path / "out")
    assert proc.returncode == 1
    assert "docs/notes.md:3:14: unresolved template text '{lead_handler}'" in proc.output
    assert "Traceback" not in proc.output


def test_the_gates_markdown_only_build_renders_the_same_pages_and_still_fails_on_a_macro_error(
        built_site: BuiltSite, tmp_path: Path) -> None:
    from runbook.site.build import build

    quick = build(ROOT / "mkdocs.yml", tmp_path / "quick", markdown_only=True)
    assert quick.ok, quick.output
    pages = sorted(p.relative_to(built_site.rendered_dir) for p in built_site.rendered_dir.rglob("*"))
    assert pages and pages == sorted(p.relative_to(quick.rendered_dir) for p in quick.rendered_dir.rglob("*"))
    for page in pages:
        if (built_site.rendered_dir / page).is_file():
            assert (quick.rendered_dir / page).read_bytes() == (built_site.rendered_dir / page).read_bytes(), page
    assert not list((tmp_path / "quick" / "site").rglob("*.html"))  # no HTML, no search index
    project = copy_project(tmp_path / "project")
    (project / "docs" / "notes.md").write_text("# Notes\n\nThe function {lead_handler}.\n")
    broken = build(project / "mkdocs.yml", tmp_path / "broken", markdown_only=True)
    assert broken.returncode == 1
    assert "docs/notes.md:3:14: unresolved template text '{lead_handler}'" in broken.output
