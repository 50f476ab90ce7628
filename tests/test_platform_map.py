"""The home page's platform map: every box and alarm of the catalog, links, severity groups,
theme-neutral colors, located errors for an alarm on no box, a clear error without Graphviz."""

from __future__ import annotations

import dataclasses
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import markdown
import pytest

from runbook.data.load import load_cached
from runbook.data.model import SEVERITIES, Alarm, Catalog
from runbook.errors import RunbookError
from runbook.site import platform_map as pm
from tests.conftest import BuiltSite

ROOT = Path(__file__).resolve().parent.parent

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed (Debian: graphviz)")


@pytest.fixture(scope="module")
def cat() -> Catalog:
    return load_cached(ROOT / "runbook_data")


@pytest.fixture(scope="module")
def page(cat: Catalog) -> str:
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot is not installed (Debian: graphviz)")
    return pm.platform_map(cat)


@pytest.fixture(scope="module")
def svg(page: str) -> ET.Element:
    m = re.search(r"<svg\b.*</svg>", page, re.S)
    assert m, page
    return ET.fromstring(m.group(0))  # well-formed: no namespaces, no xlink left


def _boxes(svg: ET.Element) -> dict[str, ET.Element]:
    """Box key (the node's <title>) → its <g class="node ...">."""
    out = {}
    for g in svg.iter("g"):
        if "node" in (g.get("class") or "").split():
            title = g.find("title")
            assert title is not None and title.text
            out[title.text] = g
    return out


def _texts(el: ET.Element) -> list[str]:
    return [t.text or "" for t in el.iter("text")]


def _with_alarm(cat: Catalog, alarm_id: str, **changes: object) -> Catalog:
    """A copy of the catalog with one alarm changed (the loaded catalog is shared: never mutate it)."""
    groups = []
    for g in cat.groups:
        alarms = [a.model_copy(update=changes) if a.id == alarm_id else a for a in g.alarms]
        groups.append(g.model_copy(update={"alarms": alarms}))
    return dataclasses.replace(cat, groups=groups, _scopes={})


# ------------------------------------------------------------------ what the map shows


def test_every_box_of_the_topology_is_drawn_with_its_resource(cat: Catalog, svg: ET.Element) -> None:
    boxes = _boxes(svg)
    assert set(boxes) == {b.key for b in pm.TOPOLOGY.boxes}
    for b in pm.TOPOLOGY.boxes:
        texts = _texts(boxes[b.key])
        assert b.title in texts
        if b.key != pm.VISITOR:
            assert pm.TYPE_LABEL[cat.resources[b.key].type] in texts
    # The list: the website (CloudFront, S3), the API, the handler, table, queue and DLQ, the canaries.
    drawn_types = {cat.resources[k].type for k in boxes if k != pm.VISITOR}
    assert {"cloudfront_distribution", "s3_bucket", "http_api", "lambda_function", "dynamodb_table",
            "sqs_queue", "canary"} <= drawn_types
    assert {"lead_queue", "dlq", "lead_handler", "leads_table", "api", "website_cdn", "website_bucket",
            "api_canary", "website_canary"} <= set(boxes)


def test_request_flow_edges(svg: ET.Element) -> None:
    edges = {
        "".join(g.findtext("title", "")).replace("->", "→")
        for g in svg.iter("g") if "edge" in (g.get("class") or "").split()
    }
    assert edges == {f"{e.tail}→{e.head}" for e in pm.TOPOLOGY.edges}
    for tail, head in [("visitor", "website_cdn"), ("website_cdn", "website_bucket"), ("visitor", "api"),
                       ("lead_queue", "lead_handler"), ("lead_handler", "leads_table"), ("lead_queue", "dlq")]:
        assert f"{tail}→{head}" in edges


def test_every_alarm_is_on_the_box_of_its_resource_linking_to_its_page(cat: Catalog, svg: ET.Element) -> None:
    boxes = _boxes(svg)
    links = [(a.get("href"), a) for a in svg.iter("a")]
    assert sorted(h for h, _ in links if h) == sorted(f"alarms/{a.id}/" for a in cat.alarms)
    for alarm in cat.alarms:
        (box,) = [k for k, g in boxes.items() if any(a.get("href") == f"alarms/{alarm.id}/" for a in g.iter("a"))]
        anchor = next(a for a in boxes[box].iter("a") if a.get("href") == f"alarms/{alarm.id}/")
        assert _texts(anchor) == [alarm.title]
        title = anchor.find("title")
        assert title is not None and title.text and alarm.summary.rstrip(".") in title.text
    # Derived from the dimensions, spot-checked against what the data says.
    where = {a.id: k for k, g in boxes.items() for a in cat.alarms
             if any(x.get("href") == f"alarms/{a.id}/" for x in g.iter("a"))}
    assert where["lambda-errors"] == "lead_handler"
    assert where["sqs-dlq"] == "dlq"
    assert where["api-5xx"] == "api"
    assert where["dynamodb-throttles"] == "leads_table"
    assert where["website-canary-failed"] == "website_canary"
    assert where["api-canary-failed"] == "api_canary"


def test_alarms_are_grouped_by_severity(cat: Catalog, svg: ET.Element) -> None:
    assigned = pm.assign(cat)
    badges = {s.upper(): s for s in SEVERITIES}
    for key, g in _boxes(svg).items():
        texts = _texts(g)
        seen: list[str] = []
        by_sev: dict[str, list[str]] = {}
        for t in texts:
            if t in badges:
                seen.append(badges[t])
                by_sev[badges[t]] = []
            elif seen and t:
                by_sev[seen[-1]].append(t)
        alarms: list[Alarm] = assigned[key]
        assert seen == [s for s in SEVERITIES if any(a.severity == s for a in alarms)], key
        for sev in seen:
            assert by_sev[sev] == [a.title for a in alarms if a.severity == sev], (key, sev)


def test_svg_is_inert_offline_and_theme_neutral(page: str) -> None:
    assert "<script" not in page.lower()
    assert not re.search(r"https?://", page)  # no namespace URIs or DOCTYPE either: inline SVG needs none
    assert "xlink:" not in page and "javascript:" not in page.lower()
    assert "<?xml" not in page and "<!DOCTYPE" not in page and "<!--" not in page
    # Lines and text follow the scheme's text color; nothing is drawn in hard black or white-on-nothing.
    assert "currentColor" in page
    assert not re.search(r'(fill|stroke)="(black|#000000|#000|white)"', page, re.I)
    white = re.findall(r'fill="#ffffff"', page, re.I)
    assert len(white) == len(re.findall(r">(CRITICAL|HIGH|MEDIUM|LOW)<", page))  # only on severity badges
    assert not re.search(r'<polygon fill="(?!currentColor|transparent|none|#c62828|#ef6c00|#1565c0|#546e7a)', page)
    # No leftover template or placeholder text (the page hook would refuse it).
    from runbook.data import placeholders
    assert list(placeholders.leftovers(page)) == []


def test_the_page_keeps_the_svg_as_raw_html(page: str) -> None:
    out = markdown.markdown(page, extensions=["attr_list", "md_in_html", "tables"])
    assert '<div class="rb-platform-map">\n<svg ' in out
    assert out.count('<a href="alarms/') == page.count('<a href="alarms/')


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize("value", ["kanjona-{env}-lead-handler", "kanjona-prod-lead-handler", "{lead_handler.name}"])
def test_a_dimension_may_name_its_resource_by_name_or_pattern(cat: Catalog, value: str) -> None:
    lam = cat.alarm("lambda-errors")
    assert lam.metric is not None
    metric = lam.metric.model_copy(update={"dimensions": {"FunctionName": value}})
    assert lam.id in [a.id for a in pm.assign(_with_alarm(cat, lam.id, metric=metric))["lead_handler"]]


def test_an_alarm_naming_no_inventory_resource_is_a_located_error(cat: Catalog) -> None:
    lam = cat.alarm("lambda-errors")
    assert lam.metric is not None
    metric = lam.metric.model_copy(update={"dimensions": {"FunctionName": "kanjona-{env}-nobody"}})
    with pytest.raises(RunbookError) as err:
        pm.assign(_with_alarm(cat, "lambda-errors", metric=metric))
    msg = str(err.value)
    assert re.search(r"runbook_data/alarms/lambda\.yaml:\d+:\d+: alarm 'lambda-errors'", msg), msg
    assert "names no lambda_function of the inventory" in msg


def test_an_alarm_whose_dimensions_match_no_box_is_a_located_error(cat: Catalog) -> None:
    lam = cat.alarm("lambda-errors")
    assert lam.metric is not None
    metric = lam.metric.model_copy(update={"namespace": "Kanjona/Custom", "dimensions": {"Service": "leads"}})
    with pytest.raises(RunbookError) as err:
        pm.platform_map(_with_alarm(cat, "lambda-errors", metric=metric))
    msg = str(err.value)
    assert re.search(r"runbook_data/alarms/lambda\.yaml:\d+:\d+: alarm 'lambda-errors' watches Kanjona/Custom", msg)
    assert "no dimension names a resource on the platform map" in msg


def test_an_alarm_on_a_resource_the_map_does_not_draw_is_an_error(cat: Catalog) -> None:
    sqs = cat.alarm("sqs-dlq")
    assert sqs.metric is not None
    metric = sqs.metric.model_copy(update={"namespace": "AWS/S3", "dimensions": {"BucketName": "{canary_artifacts}"}})
    with pytest.raises(RunbookError, match=r"sqs\.yaml:\d+:\d+: alarm 'sqs-dlq'.*'canary_artifacts', which the "
                                           r"platform map does not draw"):
        pm.assign(_with_alarm(cat, "sqs-dlq", metric=metric))


def test_a_box_the_inventory_lacks_is_an_error(cat: Catalog) -> None:
    topo = dataclasses.replace(pm.TOPOLOGY, boxes=(*pm.TOPOLOGY.boxes, pm.Box("payments", "Payments")))
    with pytest.raises(RunbookError, match=r"inventory\.yaml:1:1: the platform map draws 'payments'"):
        pm.assign(cat, topo)


def test_without_dot_the_error_names_the_debian_package(cat: Catalog, monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no dot
    with pytest.raises(pm.PlatformMapError, match=r"`dot`.*not on PATH.*Debian package 'graphviz'"):
        pm.platform_map(cat)


def _fake_dot(tmp_path: Path, body: str) -> None:
    dot = tmp_path / "dot"
    dot.write_text(f"#!/bin/sh\n{body}\n")
    dot.chmod(0o755)


def test_a_failing_dot_fails_the_map_with_its_message(cat: Catalog, monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    _fake_dot(tmp_path, "echo 'Error: syntax error in line 3' >&2; exit 1")
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    with pytest.raises(pm.PlatformMapError, match=r"failed \(exit 1\): Error: syntax error in line 3"):
        pm.platform_map(cat)


def test_a_hanging_dot_times_out(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _fake_dot(tmp_path, "exec sleep 30")
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    with pytest.raises(pm.PlatformMapError, match=r"did not finish within 0\.5 s"):
        pm.run_dot("digraph {}", timeout=0.5)


@needs_dot
def test_a_dot_warning_is_an_error() -> None:
    with pytest.raises(pm.PlatformMapError, match="not a known color"):
        pm.run_dot('digraph { a [color="currentColor"] }')


# ------------------------------------------------------------------ the built home page


def test_the_home_page_shows_the_map_with_working_links(cat: Catalog, built_site: BuiltSite) -> None:
    html = (built_site.site_dir / "index.html").read_text(encoding="utf-8")
    assert '<h2 id="platform-map">' in html
    assert '<div class="rb-platform-map">\n<svg class="rb-platform-map-svg"' in html
    assert re.search(r'<link rel="stylesheet" href="assets/platform-map\.css(\?[^"]*)?"', html)
    for alarm in cat.alarms:
        assert f'<a href="alarms/{alarm.id}/"><title>' in html
        assert (built_site.site_dir / "alarms" / alarm.id / "index.html").is_file()
    assert (built_site.site_dir / "assets" / "platform-map.css").is_file()
