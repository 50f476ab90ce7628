"""No dangling link: every href and #anchor of the built site resolves, and no published URL is lost."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from macros import redirects as redirect_hook
from runbook.cli import main
from runbook.data.load import load
from runbook.site import links
from runbook.site.build import site_url

from .conftest import ROOT, BuiltSite, copy_project

CATALOG = load(ROOT / "runbook_data")
SITE_URL = site_url(ROOT / "mkdocs.yml")
DATA = Path(__file__).parent / "data" / "links"
PUBLISHED = ROOT / links.PUBLISHED
LOST = "no longer resolves: restore the page or redirect it (a renamed alarm keeps its former id in 'aliases')"
UNLISTED = "is not in the published list: run `runbook links --record` and commit it"


def listed_line(url: str) -> int:
    """Line of a URL in the committed list."""
    return next(n for n, u in links.read_published(PUBLISHED) if u == url)


def insertion_line(url: str) -> int:
    """Line of the first listed URL that sorts after a URL not in the list (where it would go)."""
    entries = links.read_published(PUBLISHED)
    return next((n for n, u in entries if u > url), len(PUBLISHED.read_text(encoding="utf-8").splitlines()) + 1)


# ------------------------------------------------------------------ the real site


def test_the_site_has_no_broken_link_and_every_published_url_resolves(built_site: BuiltSite) -> None:
    start = time.perf_counter()
    problems = links.check(built_site.site_dir, ROOT, CATALOG, SITE_URL, built_site.rendered_dir)
    took = time.perf_counter() - start
    assert problems == []
    pages = links.read_site(built_site.site_dir)
    count = sum(len(p.links) for p in pages.values())
    print(f"\nlink check: {count} links on {len(pages)} pages in {took:.2f} s")


def test_published_list_is_sorted_and_holds_every_page_and_alarm_url(built_site: BuiltSite) -> None:
    urls = [u for _, u in links.read_published(PUBLISHED)]
    assert urls == sorted(set(urls))
    for a in CATALOG.alarms:
        assert f"/alarms/{a.id}/" in urls
        for e in CATALOG.environments:
            assert f"/alarms/{a.name.replace('{env}', e.name)}/" in urls
    assert urls == links.site_urls(links.read_site(built_site.site_dir))


def test_every_alarm_name_and_alias_redirects_to_its_page(built_site: BuiltSite) -> None:
    plan = links.redirects(CATALOG, SITE_URL)
    assert len(plan) == sum(len(CATALOG.environments) + len(a.aliases) for a in CATALOG.alarms)
    for r in plan:
        html = (built_site.site_dir / r.path).read_text(encoding="utf-8")
        assert links.is_redirect(html)
        assert f'<meta http-equiv="refresh" content="0; url={r.target}">' in html
        assert f'<link rel="canonical" href="{SITE_URL}alarms/' in html
        assert re.fullmatch(r"\.\./[a-z0-9-]+/(\?env=[a-z0-9-]+)?", r.target), "relative, so any host works"
    page = (built_site.site_dir / "alarms/kanjona-prod-lambda-errors/index.html").read_text(encoding="utf-8")
    assert 'location.replace("../lambda-errors/?env=prod")' in page


def test_a_redirect_never_replaces_a_real_page(tmp_path: Path) -> None:
    real = tmp_path / "alarms" / "kanjona-prod-lambda-errors" / "index.html"
    real.parent.mkdir(parents=True)
    real.write_text("<h1>a real page</h1>", encoding="utf-8")
    config = SimpleNamespace(config_file_path=str(ROOT / "mkdocs.yml"), site_dir=str(tmp_path), site_url=SITE_URL)
    redirect_hook.on_post_build(config)
    assert real.read_text(encoding="utf-8") == "<h1>a real page</h1>"
    assert links.is_redirect((tmp_path / "alarms/kanjona-dev-lambda-errors/index.html").read_text(encoding="utf-8"))


def test_a_missing_alarm_page_is_reported_at_the_alarm(built_site: BuiltSite, tmp_path: Path) -> None:
    site = tmp_path / "site"
    shutil.copytree(built_site.site_dir, site)
    alarm = CATALOG.alarm("sqs-dlq")
    shutil.rmtree(site / "alarms" / alarm.id)
    problems = links.check(site, ROOT, CATALOG, SITE_URL, built_site.rendered_dir)
    assert f"{alarm.loc.file}:{alarm.loc.line}: alarm 'sqs-dlq' has no page at /alarms/sqs-dlq/" in problems
    assert f"{links.PUBLISHED}:{listed_line('/alarms/sqs-dlq/')}: published URL '/alarms/sqs-dlq/' {LOST}" in problems
    lambda_yaml = CATALOG.alarm("lambda-errors").loc.file
    assert any(p.startswith(lambda_yaml) and p.endswith("broken link '../sqs-dlq/'") for p in problems), (
        "the related-alarm link of a generated page is reported in its alarm's YAML"
    )


@pytest.mark.parametrize(
    ("href", "expected"),
    [
        ("../sqs-dlq/", ("alarms/sqs-dlq/index.html", "")),
        ("../sqs-dlq", ("alarms/sqs-dlq/index.html", "")),
        ("../../escalation/#escalation-path", ("escalation/index.html", "escalation-path")),
        ("#severity", ("alarms/lambda-errors/index.html", "severity")),
        ("/assets/runbook.js", ("assets/runbook.js", "")),
        (f"{SITE_URL}alarms/sqs-dlq/?env=prod", ("alarms/sqs-dlq/index.html", "")),
        ("../nowhere/", (None, "")),
        ("../../../outside.html", (None, "")),
        ("https://aws.amazon.com/cloudwatch/", None),
        ("mailto:oncall@kanjona.com", None),
    ],
)
def test_resolve_maps_relative_absolute_and_own_site_links_to_files(
    href: str, expected: tuple[str | None, str] | None
) -> None:
    files = {"alarms/sqs-dlq/index.html", "alarms/lambda-errors/index.html", "escalation/index.html",
             "assets/runbook.js", "index.html"}
    assert links.resolve("alarms/lambda-errors/index.html", href, SITE_URL, files) == expected


def test_resolve_honours_a_site_served_under_a_path() -> None:
    files = {"alarms/sqs-dlq/index.html"}
    url = "https://example.org/runbook/"
    for href in ("/runbook/alarms/sqs-dlq/", f"{url}alarms/sqs-dlq/"):
        assert links.resolve("index.html", href, url, files) == ("alarms/sqs-dlq/index.html", "")
    assert links.resolve("index.html", "/elsewhere/", url, files) == (None, "")


# ------------------------------------------------------------------ a project that breaks things



def rename_alarm(project: Path, old: str, new: str) -> None:
    """Rename an alarm id everywhere it is referenced (its CloudWatch name stays), adding no alias."""
    pattern = re.compile(rf"(?<!\}}-)\b{re.escape(old)}\b")
    for file in [*project.glob("runbook_data/**/*.yaml"), *project.glob("docs/**/*.md")]:
        text = file.read_text(encoding="utf-8")
        file.write_text(pattern.sub(new, text), encoding="utf-8")


def run_links(capsys: pytest.CaptureFixture[str], project: Path, *extra: str) -> tuple[int, list[str]]:
    rc = main(["links", "--mkdocs", str(project / "mkdocs.yml"), *extra])
    return rc, capsys.readouterr().out.splitlines()


def test_broken_links_a_renamed_alarm_and_an_orphan_page_fail_with_located_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project = copy_project(tmp_path)
    shutil.copy(DATA / "broken.md", project / "docs" / "broken.md")
    shutil.copy(DATA / "orphan-alarm-page.md", project / "docs" / "alarms" / "retired.md")
    rename_alarm(project, "lambda-errors", "lambda-failures")
    lambda_yaml = project / "runbook_data" / "alarms" / "lambda.yaml"
    text = lambda_yaml.read_text(encoding="utf-8")
    typo = text.replace("(dynamodb-throttles.md)", "(dynamodb-throttled.md)", 1)  # a link in the data
    lambda_yaml.write_text(typo, encoding="utf-8")
    typo_line = typo[: typo.index("dynamodb-throttled.md")].count("\n") + 1
    monkeypatch.chdir(project)

    rc, out = run_links(capsys, project)
    assert rc == 1
    published = str(links.PUBLISHED)
    assert out == [
        "docs/alarms/retired.md:1: page /alarms/retired/ belongs to no alarm of runbook_data "
        "(pages under alarms/ are alarm pages)",
        "docs/broken.md:5: broken link 'alarms/sqs-dlq.md#no-such-section'",
        "docs/broken.md:7: broken link 'alarms/decommissioned/'",
        "docs/broken.md:9: broken link 'missing-page.md'",
        "docs/broken.md:11: broken link 'assets/diagram.png'",
        f"{published}:{listed_line('/alarms/lambda-errors/')}: published URL '/alarms/lambda-errors/' {LOST}",
        f"{published}:{insertion_line('/alarms/lambda-failures/')}: URL '/alarms/lambda-failures/' {UNLISTED}",
        f"{published}:{insertion_line('/alarms/retired/')}: URL '/alarms/retired/' {UNLISTED}",
        f"{published}:{insertion_line('/broken/')}: URL '/broken/' {UNLISTED}",
        f"runbook_data/alarms/lambda.yaml:{typo_line}: broken link 'dynamodb-throttled.md'",
    ]

    # The fix: keep the old id as an alias, drop the broken page, record the new URLs.
    lambda_yaml.write_text(text.replace("  - id: lambda-failures\n", "  - id: lambda-failures\n"
                                        "    aliases: [lambda-errors]\n", 1), encoding="utf-8")
    (project / "docs" / "broken.md").unlink()
    (project / "docs" / "alarms" / "retired.md").unlink()
    assert run_links(capsys, project, "--record") == (0, [])
    recorded = [u for _, u in links.read_published(project / links.PUBLISHED)]
    assert {"/alarms/lambda-errors/", "/alarms/lambda-failures/"} <= set(recorded)
    assert run_links(capsys, project) == (0, [])
