"""The site in Debian's Chromium: ?env links, name redirects, search by alarm name, copy buttons, fill-ins."""

from __future__ import annotations

import functools
import shutil
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from runbook.site import links

from .conftest import BuiltSite

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
    # Belt and braces with the route check below: no name but loopback resolves at all.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
TABS_BY_SET = """() => Array.from(document.querySelectorAll('.tabbed-set')).map(set => {
  const input = set.querySelector(':scope > input:checked');
  const label = set.querySelector(`:scope > .tabbed-labels > label[for="${input.id}"]`);
  const blocks = set.querySelectorAll(':scope > .tabbed-content > .tabbed-block');
  const index = Array.from(set.querySelectorAll(':scope > input')).indexOf(input);
  return {label: label.innerText.trim(), shown: blocks[index].getClientRects().length > 0};
})"""


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def server(built_site: BuiltSite) -> Iterator[str]:
    handler = functools.partial(_Quiet, directory=str(built_site.site_dir))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (the README's test command does)")
    from playwright.sync_api import sync_playwright

    start = time.perf_counter()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()
    print(f"\nbrowser tests: {time.perf_counter() - start:.1f} s with the browser up")


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh profile per test (own localStorage), failing on any request that leaves loopback."""
    context = browser.new_context()
    outside: list[str] = []

    def guard(route: Any) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", guard)
    errors: list[str] = []
    pg = context.new_page()
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    yield pg
    context.close()
    assert not outside, f"requests to hosts other than 127.0.0.1: {outside}"
    assert not errors, f"JavaScript errors: {errors}"


def open_page(pg: Any, url: str) -> None:
    pg.goto(url)
    pg.wait_for_load_state("load")
    # Material marks tab labels as linked when it has mounted them: the state must survive that.
    if pg.locator(".tabbed-set").count():
        pg.wait_for_selector(".tabbed-labels--linked", state="attached")
    # Let the work Material scheduled on mounting (rxjs, animation-frame scheduled) run: two
    # frames of the page's own event loop, not a guessed number of milliseconds.
    pg.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")


def assert_env_everywhere(pg: Any, env: str) -> None:
    sets = pg.evaluate(TABS_BY_SET)
    assert sets, f"{pg.url} has no tab sets"
    wrong = [i for i, s in enumerate(sets) if s != {"label": env, "shown": True}]
    assert not wrong, f"{pg.url}: tab sets {wrong} of {len(sets)} are not on {env}: {[sets[i] for i in wrong]}"


def test_env_query_selects_that_tab_in_every_set_and_sticks(server: str, page: Any) -> None:
    open_page(page, f"{server}/alarms/lambda-errors/?env=prod")
    assert_env_everywhere(page, "prod")
    open_page(page, f"{server}/alarms/lambda-error-rate/")
    assert_env_everywhere(page, "prod")
    # A later choice by click still wins, as with Material's own linking.
    page.locator(".tabbed-labels > label", has_text="dev").first.click()
    assert_env_everywhere(page, "dev")
    open_page(page, f"{server}/alarms/lambda-duration/")
    assert_env_everywhere(page, "dev")


def test_alarm_name_url_redirects_to_the_page_with_its_environment(server: str, page: Any) -> None:
    open_page(page, f"{server}/alarms/kanjona-prod-lambda-errors/")
    page.wait_for_url("**/alarms/lambda-errors/?env=prod")
    open_page(page, page.url)
    assert page.url == f"{server}/alarms/lambda-errors/?env=prod"
    assert_env_everywhere(page, "prod")
    open_page(page, f"{server}/alarms/kanjona-dev-sqs-dlq/")
    page.wait_for_url("**/alarms/sqs-dlq/?env=dev")


@pytest.mark.parametrize("query", ["kanjona-prod-lambda-errors", "lambda-errors"])
def test_search_finds_the_alarm_page_first(server: str, page: Any, query: str) -> None:
    open_page(page, f"{server}/")
    box = page.locator("input.md-search__input")
    box.click()
    # Typed key by key as a reader does: Material searches on keyboard input, not on a pasted value.
    box.press_sequentially(query, delay=10)
    first = page.locator(".md-search-result__list > li").first
    first.wait_for(state="visible", timeout=15_000)
    href = first.locator("a").first.get_attribute("href")
    assert href is not None and urlsplit(href).path.rstrip("/").endswith("alarms/lambda-errors"), href


def test_every_code_block_has_a_copy_button(server: str, page: Any, built_site: BuiltSite) -> None:
    pages = [p for p in links.read_site(built_site.site_dir).values()
             if not p.redirect and "<pre" in (built_site.site_dir / p.path).read_text(encoding="utf-8")]
    # Material 9.8 renders the button as <nav class="md-code__nav"><button data-md-type="copy">.
    per_block = (
        "() => Array.from(document.querySelectorAll('pre > code')).map(c => { const pre = c.parentElement;"
        " return Array.from(pre.querySelectorAll('button[data-md-type=copy]')).filter(b =>"
        " b.dataset.clipboardTarget === `#${pre.id} > code`).length; })"
    )
    blocks = 0
    for p in pages:
        page.goto(f"{server}{links.url_of(p.path)}", wait_until="domcontentloaded")
        try:
            page.wait_for_function(f"() => ({per_block})().every(n => n === 1)", timeout=5_000)
        except Exception:
            pytest.fail(f"{p.path}: copy buttons per code block {page.evaluate(per_block)}")
        blocks += len(page.evaluate(per_block))
    assert pages and blocks > 0
    print(f"\n{blocks} code blocks on {len(pages)} pages, each with a copy button")


def test_fill_in_is_highlighted_on_the_alarm_that_has_one(server: str, page: Any) -> None:
    open_page(page, f"{server}/alarms/lambda-error-rate/")
    marks = page.locator("mark.rb-fill-in", has_text="<previous-version>")
    assert marks.count() >= 1
    # The highlight is visual only: what the copy button copies is the command as rendered.
    code = marks.first.locator("xpath=ancestor::code[1]")
    assert "--function-version <previous-version>" in code.inner_text()
