"""The on-call reader in Chromium: every command reachable in every environment, the first step
above the fold, the environment unmistakable, the layout on a phone, print.

Screenshots go to ``$RUNBOOK_TEST_OUTPUT`` (default ``test-output/`` in the project).
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from runbook.data.load import load_cached
from runbook.gate.snippets import Snippet, extract_dir
from runbook.site.render import per_env

from .conftest import ROOT, BuiltSite
from .test_browser import browser, open_page, page, server  # noqa: F401 - fixtures

pytestmark = pytest.mark.browser

CATALOG = load_cached(ROOT / "runbook_data")
ENVS = [e.name for e in CATALOG.environments]
OUTPUT = Path(os.environ.get("RUNBOOK_TEST_OUTPUT", ROOT / "test-output"))
SIZES = {"desktop": (1440, 900), "phone": (390, 844)}

# Each visible code block of the page: its text and the environment of the tab it is in
# ("" outside tabs). The text as a reader copies it: the code element's text.
VISIBLE_BLOCKS = """() => Array.from(document.querySelectorAll('.md-content pre > code'))
  .filter(code => code.getClientRects().length > 0)
  .map(code => {
    const block = code.closest('.tabbed-block');
    return {env: block ? (block.dataset.rbEnv || '?') : '', text: code.textContent};
  })"""


def _url(page_path: str) -> str:
    rel = page_path.removeprefix("docs/").removesuffix(".md")
    if rel == "index":
        return "/"
    return "/" + rel.removesuffix("/index") + "/"


def _page_env(rendered: Path) -> str:
    match = re.match(r"---\n(.*?)\n---\n", rendered.read_text(encoding="utf-8"), re.S)
    found = re.search(r"^env:\s*(\S+)", match.group(1), re.M) if match else None
    return found.group(1) if found else CATALOG.default_env.name


@pytest.fixture(scope="module")
def extracted(built_site: BuiltSite) -> dict[str, list[Snippet]]:
    """What the gate extracts, by page: the list the browser must find, not a hand list."""
    out: dict[str, list[Snippet]] = {}
    for s in extract_dir(built_site.rendered_dir, "docs/", ENVS, CATALOG.default_env.name):
        out.setdefault(s.page, []).append(s)
    return out


def _norm(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


def _check_blocks(pg: Any, page_path: str, env: str, snippets: list[Snippet], page_env: str) -> None:
    blocks = pg.evaluate(VISIBLE_BLOCKS)
    shown = Counter(_norm(b["text"]) for b in blocks if b["env"] == env or (b["env"] == "" and env == page_env))
    wanted = Counter(_norm(s.text) for s in snippets if s.env == env and s.lang != "console")
    missing = wanted - shown
    assert not missing, f"{page_path} [{env}]: not visible: {list(missing)[:2]}"
    twice = {t: n for t, n in shown.items() if n > wanted.get(t, 0) and t in wanted}
    assert not twice, f"{page_path} [{env}]: visible more than once: {list(twice)[:2]}"
    others = [b for b in blocks if b["env"] not in ("", env)]
    assert not others, f"{page_path} [{env}]: blocks of another environment visible: {others[:1]}"


def test_every_extracted_block_is_visible_exactly_once_in_its_environment(
    server: str, browser: Any, built_site: BuiltSite, extracted: dict[str, list[Snippet]]  # noqa: F811
) -> None:
    """For every page and environment, chosen by ?env=, by a click on the switch and by the
    stored choice: each block the gate extracted for it is visible, exactly once."""
    checked = 0
    for page_path, snippets in sorted(extracted.items()):
        rendered = built_site.rendered_dir / page_path.removeprefix("docs/")
        page_env = _page_env(rendered)
        url = server + _url(page_path)
        for env in ENVS:
            context = browser.new_context()
            pg = context.new_page()
            open_page(pg, f"{url}?env={env}")  # by the link
            _check_blocks(pg, page_path, env, snippets, page_env)
            open_page(pg, url)  # by the stored choice
            _check_blocks(pg, page_path, env, snippets, page_env)
            other = next(e for e in ENVS if e != env)
            open_page(pg, f"{url}?env={other}")
            if pg.locator("nav.rb-env-switch").count():  # by a click on the switch
                pg.locator(f'nav.rb-env-switch a[data-env="{env}"]').click()
                _check_blocks(pg, page_path, env, snippets, page_env)
            context.close()
            checked += 1
    assert checked == len(extracted) * len(ENVS) and checked > 20


def test_no_tab_set_mixes_two_commands(server: str, page: Any, extracted: dict[str, list[Snippet]]) -> None:  # noqa: F811
    for page_path in sorted(extracted):
        open_page(page, server + _url(page_path))
        labels = page.evaluate("""() => Array.from(document.querySelectorAll('.tabbed-set'))
          .map(s => Array.from(s.querySelectorAll(':scope > .tabbed-labels > label')).map(l => l.innerText.trim()))""")
        merged = [ls for ls in labels if len(ls) != len(set(ls))]
        assert not merged, f"{page_path}: tab sets with repeated labels (two commands merged): {merged}"


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_first_command_is_above_the_fold(server: str, browser: Any, size: str, scheme: str) -> None:  # noqa: F811
    width, height = SIZES[size]
    OUTPUT.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": width, "height": height}, color_scheme=scheme)
    pg = context.new_page()
    for alarm in CATALOG.alarms:
        open_page(pg, f"{server}/alarms/{alarm.id}/?env=prod")
        box = pg.evaluate("""() => {
          const rect = el => {
            const r = el.getBoundingClientRect();
            return {top: r.top, bottom: r.bottom, left: r.left, right: r.right};
          };
          const severity = document.querySelector('.md-content .admonition');
          const sw = document.querySelector('nav.rb-env-switch');
          const pre = Array.from(document.querySelectorAll('.md-content pre')).find(p => p.getClientRects().length);
          return {severity: rect(severity), title: severity.querySelector('.admonition-title').innerText,
                  text: severity.innerText, switch: rect(sw), current: sw.querySelector('[aria-current]').dataset.env,
                  pre: rect(pre), scheme: document.body.getAttribute('data-md-color-scheme'),
                  scroll: document.documentElement.scrollWidth};
        }""")
        level = next(lv for lv in CATALOG.escalation.severity_levels if lv.severity == alarm.severity)
        assert level.response_time in box["title"] and alarm.severity.capitalize() in box["title"]
        for part in ("severity", "switch", "pre"):
            assert 0 <= box[part]["top"] and box[part]["bottom"] <= height, (alarm.id, size, part, box)
            assert box[part]["right"] <= width + 0.5, (alarm.id, size, part, box)
        assert box["current"] == "prod"
        assert box["scheme"] == ("slate" if scheme == "dark" else "default")
        assert box["scroll"] <= width, f"{alarm.id}: the page scrolls sideways on {size}"
        if alarm.id == "lambda-errors":
            pg.screenshot(path=str(OUTPUT / f"alarm-{size}-{scheme}.png"))
    open_page(pg, f"{server}/")
    pg.locator(".rb-platform-map").screenshot(path=str(OUTPUT / f"platform-map-{size}-{scheme}.png"))
    context.close()


def test_the_environment_is_unmistakable(server: str, page: Any) -> None:  # noqa: F811
    url = f"{server}/alarms/lambda-errors/"
    open_page(page, url)
    assert page.evaluate("() => document.body.dataset.rbEnv") == CATALOG.default_env.name
    for value, env in (("PROD", "prod"), ("Production", "prod"), ("dEv", "dev"), ("development", "dev")):
        open_page(page, f"{url}?env={value}")
        assert page.evaluate("() => document.body.dataset.rbEnv") == env, value
        assert page.locator(".rb-env-notice").count() == 0
    open_page(page, f"{url}?env=staging-eu")
    notice = page.locator(".rb-env-notice")
    assert notice.is_visible() and "staging-eu" in notice.inner_text()
    # Prod looks different: its label, its blocks and the switch.
    open_page(page, f"{url}?env=prod")
    styles = page.evaluate("""() => {
      const label = l => getComputedStyle(l).color;
      const labels = Array.from(document.querySelectorAll('.tabbed-labels > label'));
      const prod = labels.find(l => l.innerText.trim() === 'prod');
      const dev = labels.find(l => l.innerText.trim() === 'dev');
      const code = document.querySelector('.tabbed-block.rb-block-production pre > code');
      return {prod: label(prod), dev: label(dev), shadow: getComputedStyle(code).boxShadow,
              body: document.body.classList.contains('rb-production'),
              current: getComputedStyle(document.querySelector('nav.rb-env-switch [aria-current]')).backgroundColor};
    }""")
    assert styles["prod"] != styles["dev"] and styles["body"]
    assert "inset" in styles["shadow"] or "rgb(198, 40, 40)" in styles["shadow"]
    assert styles["current"] == "rgb(198, 40, 40)"


def test_a_search_hit_by_full_alarm_name_opens_that_environment(server: str, page: Any) -> None:  # noqa: F811
    for env in ENVS:
        name = per_env(CATALOG, CATALOG.alarm("lambda-errors").name)[env]
        open_page(page, f"{server}/")
        page.keyboard.press("/")
        page.keyboard.type(name)
        # The results follow the typing: wait until the whole name's first hit is the alarm's page
        # (a hit taken earlier may be one for the first letters).
        page.wait_for_function("""() => {
          const hit = document.querySelector('.md-search-result__link');
          return hit && hit.getAttribute('href').includes('alarms/lambda-errors');
        }""")
        page.locator(".md-search-result__link").first.click()
        page.wait_for_selector("nav.rb-env-switch [aria-current]")
        assert page.evaluate("() => document.body.dataset.rbEnv") == env, page.url


def test_fill_in_is_not_the_search_yellow_and_readable_in_both_schemes(server: str, browser: Any) -> None:  # noqa: F811
    for scheme in ("light", "dark"):
        context = browser.new_context(color_scheme=scheme)
        pg = context.new_page()
        open_page(pg, f"{server}/alarms/lambda-error-rate/?h=lambda")
        colors = pg.evaluate("""() => {
          const fill = document.querySelector('mark.rb-fill-in');
          const hit = document.querySelector('.md-content mark:not(.rb-fill-in)');
          const c = el => el && [getComputedStyle(el).backgroundColor, getComputedStyle(el).color];
          return {fill: c(fill), hit: c(hit)};
        }""")
        assert colors["fill"], "no fill-in on the page"
        assert colors["hit"], "?h= highlighted no search hit"
        assert colors["fill"][0] != colors["hit"][0], (scheme, colors)
        background, text = colors["fill"]
        assert background != text and "0, 0, 255" not in background, (scheme, colors)
        context.close()


def test_phone_layout_keeps_everything_on_screen(
    server: str, browser: Any, extracted: dict[str, list[Snippet]]  # noqa: F811
) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844})
    pg = context.new_page()
    for page_path in sorted(extracted):
        open_page(pg, server + _url(page_path) + "?env=prod")
        over = pg.evaluate("""() => {
          const w = document.documentElement.clientWidth;
          const wide = Array.from(document.querySelectorAll('.md-content table, .md-content pre'))
            .filter(el => el.getClientRects().length && el.getBoundingClientRect().right > w + 1
                          && !el.closest('.md-typeset__scrollwrap, .md-typeset__table'));
          const covered = Array.from(document.querySelectorAll('.md-content pre > code')).filter(code => {
            const button = code.parentElement.querySelector('.md-clipboard');
            if (!button || !code.getClientRects().length) return false;
            const b = button.getBoundingClientRect(), pad = parseFloat(getComputedStyle(code).paddingRight);
            return pad < b.width;
          });
          return {page: document.documentElement.scrollWidth > w, wide: wide.length, covered: covered.length};
        }""")
        assert over == {"page": False, "wide": 0, "covered": 0}, (page_path, over)
    context.close()


def test_an_alarm_page_prints_every_environment_without_copy_icons(server: str, page: Any) -> None:  # noqa: F811
    open_page(page, f"{server}/alarms/lambda-errors/?env=prod")
    page.emulate_media(media="print")
    printed = page.evaluate("""() => ({
      blocks: Array.from(document.querySelectorAll('.md-content pre > code'))
        .filter(c => c.getClientRects().length).length,
      all: document.querySelectorAll('.md-content pre > code').length,
      icons: Array.from(document.querySelectorAll('.md-clipboard')).filter(b => b.getClientRects().length).length,
    })""")
    assert printed["blocks"] == printed["all"] > 0 and printed["icons"] == 0, printed


def test_who_to_call_is_on_every_alarm_page_and_a_placeholder_is_not_a_link(server: str, page: Any) -> None:  # noqa: F811
    for alarm in CATALOG.alarms:
        open_page(page, f"{server}/alarms/{alarm.id}/")
        section = page.evaluate("""() => {
          const h = document.getElementById('who-to-call');
          const out = []; let el = h.nextElementSibling;
          while (el && el.tagName !== 'H2') { out.push(el); el = el.nextElementSibling; }
          return {text: out.map(e => e.innerText).join('\\n'),
                  missing: out.flatMap(e => Array.from(e.querySelectorAll('.rb-not-configured')))
                    .map(e => e.closest('a') ? 'link' : 'span')};
        }""")
        level = next(lv for lv in CATALOG.escalation.severity_levels if lv.severity == alarm.severity)
        assert level.response_time in section["text"], alarm.id
        assert "PagerDuty/Opsgenie link" not in section["text"]
        assert section["missing"] and set(section["missing"]) == {"span"}, (alarm.id, section)


def test_dark_mode_follows_the_os_and_the_toggle_still_works(server: str, browser: Any) -> None:  # noqa: F811
    for os_scheme, first, toggled in (("dark", "slate", "default"), ("light", "default", "slate")):
        context = browser.new_context(color_scheme=os_scheme)
        pg = context.new_page()
        open_page(pg, f"{server}/alarms/lambda-errors/")
        assert pg.evaluate("() => document.body.getAttribute('data-md-color-scheme')") == first
        pg.locator("label.md-header__button[for^='__palette']:visible").first.click()
        pg.wait_for_function(f"() => document.body.getAttribute('data-md-color-scheme') === '{toggled}'")
        context.close()


STATE_CHANGING_TABS = """() => {
  const sets = Array.from(document.querySelectorAll('.tabbed-set'));
  const info = set => {
    const labels = Array.from(set.querySelectorAll(':scope > .tabbed-labels > label'));
    const by = name => labels.find(l => l.innerText.trim() === name);
    const style = l => l && {bg: getComputedStyle(l).backgroundColor, color: getComputedStyle(l).color,
                              before: getComputedStyle(l, '::before').content,
                              changes: l.classList.contains('rb-tab-changes')};
    return {changes: !!set.querySelector('.admonition.rb-changes'), prod: style(by('prod')), dev: style(by('dev'))};
  };
  return sets.map(info);
}"""


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_state_changing_prod_tabs_stand_out_and_the_box_says_what_changes(
    server: str, browser: Any, size: str, scheme: str  # noqa: F811
) -> None:
    width, height = SIZES[size]
    context = browser.new_context(viewport={"width": width, "height": height}, color_scheme=scheme)
    pg = context.new_page()
    open_page(pg, f"{server}/alarms/lambda-errors/?env=prod")
    sets = pg.evaluate(STATE_CHANGING_TABS)
    changing = [s for s in sets if s["changes"]]
    reading = [s for s in sets if not s["changes"] and s["prod"]]
    assert changing and reading, sets
    for s in changing:
        assert s["prod"]["changes"] and s["dev"]["changes"], s
        assert "26A0" in s["prod"]["before"].upper() or "⚠" in s["prod"]["before"], s
        # Production's label is filled: unlike dev's, unlike a read-only command's prod label.
        assert s["prod"]["bg"] not in (s["dev"]["bg"], reading[0]["prod"]["bg"]), (s, reading[0])
        assert s["prod"]["bg"] != s["prod"]["color"]
    # The memory change's box (the page has other state-changing commands before it).
    box = pg.locator(".tabbed-block.rb-block-production .admonition.rb-changes").filter(has_text="1024").first
    assert box.is_visible()
    text = box.inner_text()
    assert "Production" in text and "kanjona-prod-lead-handler" in text and "1024" in text, text
    assert "kanjona-dev" not in text
    assert "danger" in (box.get_attribute("class") or "")
    box.screenshot(path=str(OUTPUT / f"caution-{size}-{scheme}.png"))
    open_page(pg, f"{server}/alarms/lambda-errors/?env=dev")
    dev_box = pg.locator(".tabbed-block:not(.rb-block-production) .admonition.rb-changes").first
    assert dev_box.is_visible() and "kanjona-dev-lead-handler" in dev_box.inner_text()
    assert "warning" in (dev_box.get_attribute("class") or "")
    context.close()


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_drill_box_is_collapsed_and_opens_on_the_page(
    server: str, browser: Any, size: str, scheme: str  # noqa: F811
) -> None:
    width, height = SIZES[size]
    context = browser.new_context(viewport={"width": width, "height": height}, color_scheme=scheme)
    pg = context.new_page()
    open_page(pg, f"{server}/alarms/lambda-error-rate/")
    box = pg.locator("details.example", has_text="What it looks like when this fires")
    assert box.count() == 1
    assert box.get_attribute("open") is None  # collapsed: the steps stay first
    drill = CATALOG.alarm("lambda-error-rate").drill
    assert drill is not None
    body = box.locator(":scope > :not(summary)").first
    assert not body.is_visible()
    box.locator("summary").click()
    assert box.get_attribute("open") is not None and body.is_visible()
    text = box.inner_text()
    assert "version 3" in text and "Step 4" in text and "runbook drill --alarm lambda-error-rate" in text
    rect = box.bounding_box()
    assert rect is not None and rect["x"] >= 0 and rect["x"] + rect["width"] <= width + 1, rect
    colors = box.evaluate("e => [getComputedStyle(e).color, getComputedStyle(e).backgroundColor]")
    assert colors[0] != colors[1], colors
    box.screenshot(path=str(OUTPUT / f"drill-box-{size}-{scheme}.png"))
    context.close()
