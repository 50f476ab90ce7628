"""Links of the built site: every internal href/src and #anchor resolves, no published URL is lost."""

from __future__ import annotations

import bisect
import html
import json
import posixpath
import re
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

from runbook.data.load import load
from runbook.data.model import Alarm, Catalog
from runbook.errors import Loc, Problem, RunbookError, shown_path
from runbook.export.fsio import write_atomic
from runbook.site import build, render

PUBLISHED = Path("docs") / "published-urls.txt"
RECORD_COMMAND = "runbook links --record"
# Pages that exist to be served for *other* URLs, never linked to or bookmarked.
UNPUBLISHED = {"404.html"}
# Marks a page written by the redirect hook, so the check can tell it from a real page.
REDIRECT_META = "runbook-redirect"
LINK_ATTRS = {"a": "href", "link": "href", "area": "href", "img": "src", "script": "src",
              "iframe": "src", "source": "src", "video": "src", "audio": "src", "embed": "src"}


# ------------------------------------------------------------------ redirects


@dataclass(frozen=True)
class Redirect:
    """A page at `path` (in the site) that sends the reader to `target` (relative to it)."""

    path: str
    target: str
    title: str
    canonical: str

    @property
    def html(self) -> str:
        t = html.escape(self.target)
        return (
            "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f'<meta name="{REDIRECT_META}" content="{t}">\n<meta name="robots" content="noindex">\n'
            f"<title>Redirecting to {html.escape(self.title)}</title>\n"
            f'<link rel="canonical" href="{html.escape(self.canonical)}">\n'
            f'<meta http-equiv="refresh" content="0; url={t}">\n'
            # location.replace keeps the redirect page out of the Back button's history.
            f"<script>location.replace({json.dumps(self.target)})</script>\n"
            f'</head>\n<body>\n<p>This page moved to <a href="{t}">{html.escape(self.title)}</a>.</p>\n'
            "</body>\n</html>\n"
        )


def redirects(cat: Catalog, site_url: str = "") -> list[Redirect]:
    """Every alarm's CloudWatch name per environment → its page with that environment; former ids → page."""
    out = []
    for a in cat.alarms:
        canonical = f"{site_url}alarms/{a.id}/" if site_url else f"../{a.id}/"
        for env, name in render.per_env(cat, a.name).items():
            out.append(Redirect(f"alarms/{name}/index.html", f"../{a.id}/?env={env}", f"{a.title} ({env})", canonical))
        for alias in a.aliases:
            out.append(Redirect(f"alarms/{alias}/index.html", f"../{a.id}/", a.title, canonical))
    return out


def is_redirect(text: str) -> bool:
    return f'<meta name="{REDIRECT_META}"' in text


# ------------------------------------------------------------------ reading the site


@dataclass(frozen=True)
class Link:
    href: str
    line: int  # in the HTML file
    text: str  # the link's text, to find it in the Markdown


@dataclass
class Page:
    path: str  # in the site, posix: alarms/lambda-errors/index.html
    ids: set[str] = field(default_factory=set)
    links: list[Link] = field(default_factory=list)
    redirect: bool = False


class _Parser(HTMLParser):
    def __init__(self, page: Page) -> None:
        super().__init__(convert_charrefs=True)
        self.page = page
        self.open_a: list[tuple[str, int, list[str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        line = self.getpos()[0]
        if "id" in a:
            self.page.ids.add(a["id"])
        if tag == "a" and "name" in a:
            self.page.ids.add(a["name"])
        if tag == "meta" and a.get("name") == REDIRECT_META:
            self.page.redirect = True
        if tag == "meta" and a.get("http-equiv", "").lower() == "refresh":
            m = re.search(r"url=(.*)", a.get("content", ""), re.I)
            if m:
                self.page.links.append(Link(m.group(1).strip().strip("'\""), line, ""))
        attr = LINK_ATTRS.get(tag)
        if attr and attr in a:
            if tag == "a":
                self.open_a.append((a[attr], line, []))
            else:
                self.page.links.append(Link(a[attr], line, ""))

    def handle_data(self, data: str) -> None:
        for _, _, text in self.open_a:
            text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self.open_a:
            href, line, text = self.open_a.pop()
            self.page.links.append(Link(href, line, " ".join("".join(text).split())))

    def close(self) -> None:
        super().close()
        while self.open_a:  # an <a> never closed still links somewhere
            self.handle_endtag("a")


def read_site(site: Path) -> dict[str, Page]:
    """Every HTML page of the site with its ids and links."""
    pages = {}
    for file in sorted(site.rglob("*.html")):
        rel = file.relative_to(site).as_posix()
        page = Page(rel)
        parser = _Parser(page)
        parser.feed(file.read_text(encoding="utf-8", errors="replace"))
        parser.close()
        pages[rel] = page
    return pages


def site_files(site: Path) -> set[str]:
    return {p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_file()}


def url_of(path: str) -> str:
    """The URL a page is served at: alarms/x/index.html → /alarms/x/."""
    if path == "index.html":
        return "/"
    return "/" + path.removesuffix("index.html")


def site_urls(pages: Iterable[str]) -> list[str]:
    """Every URL a reader may have bookmarked: pages and redirects, not the 404 page."""
    return sorted(url_of(p) for p in pages if p not in UNPUBLISHED)


# ------------------------------------------------------------------ resolving a link


def resolve(page: str, href: str, site_url: str, files: set[str]) -> tuple[str | None, str] | None:
    """(file in the site or None when missing, fragment) for an internal link; None for an external one."""
    href = href.strip()
    if site_url and href.startswith(site_url):
        href = "/" + href[len(site_url):]  # our own site by its full address: a site-absolute link
        prefix = "/"
    else:
        prefix = (urlsplit(site_url).path or "/") if site_url else "/"
    parts = urlsplit(href)
    if parts.scheme or parts.netloc:
        return None  # another host, or mailto:, tel:, data:...
    path = unquote(parts.path)
    if not path:
        return page, unquote(parts.fragment)
    if path.startswith("/"):
        if not path.startswith(prefix):
            return None, parts.fragment
        target = posixpath.normpath(path[len(prefix):] or ".")
    else:
        target = posixpath.normpath(posixpath.join(posixpath.dirname(page), path))
    if target.startswith(".."):
        return None, parts.fragment
    target = "" if target == "." else target
    index = posixpath.join(target, "index.html") if target else "index.html"
    # x/ is x/index.html; a folder without its slash is too (servers redirect to it).
    candidates = [index] if path.endswith("/") or not target else [target, index]
    return next((c for c in candidates if c in files), None), unquote(parts.fragment)


# ------------------------------------------------------------------ where a link was written


@dataclass(frozen=True, order=True)
class Finding:
    where: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.where}:{self.line}: {self.message}"


def _md_source(page: str) -> list[str]:
    base = page.removesuffix("index.html").rstrip("/")
    if page.endswith("index.html"):
        return [f"{base}.md", f"{base}/index.md"] if base else ["index.md"]
    return [page.removesuffix(".html") + ".md"]


def _line_of(lines: list[str], link: Link) -> tuple[int, str] | None:
    """(line, href as written) of the Markdown that made a link: its exact href, a Markdown link
    with its #anchor (mkdocs rewrote the page part), or a Markdown link with its text."""
    frag = "#" + link.href.split("#", 1)[1] if "#" in link.href else ""
    needles = [re.compile("()" + re.escape(link.href))]
    if frag:
        needles.append(re.compile(r"\]\(([^)\s]*" + re.escape(frag) + r")[)\s]"))
    if link.text:
        needles += [re.compile(re.escape(f"[{link.text}](") + r"([^)\s]*)"), re.compile("()" + re.escape(link.text))]
    for needle in needles:
        for i, text in enumerate(lines, 1):
            if m := needle.search(text):
                return i, m.group(1) or link.href
    return None


class _Locator:
    """Maps a page of the site back to the file its author edits, and a link to its line there."""

    def __init__(self, project: Path, site: Path, rendered: Path | None, cat: Catalog) -> None:
        self.project, self.site, self.rendered, self.cat = project, site, rendered, cat
        self._lines: dict[Path, list[str]] = {}
        # Alarm pages are generated (no file in docs/): their links are written in the YAML.
        self.alarms = {f"alarms/{a.id}/index.html": a for a in cat.alarms}

    def lines(self, path: Path) -> list[str]:
        if path not in self._lines:
            self._lines[path] = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
        return self._lines[path]

    def where(self, page: str, link: Link | None = None) -> tuple[str, int, str]:
        """(source file, line, href as written there) of a page, or of one of its links."""
        href = link.href if link else ""
        docs = self.project / "docs"
        for src in _md_source(page):
            rendered = self.rendered / src if self.rendered else None
            if (docs / src).is_file():
                for text in (rendered, docs / src):
                    if link is not None and text and (hit := _line_of(self.lines(text), link)):
                        return shown_path(docs / src), hit[0], hit[1]
                return shown_path(docs / src), 1, href
        alarm = self.alarms.get(page)
        if alarm is not None and alarm.loc is not None:
            return self._in_alarm(alarm, link)
        return shown_path(self.site / page), link.line if link else 1, href

    def _in_alarm(self, alarm: Alarm, link: Link | None) -> tuple[str, int, str]:
        """A generated alarm page's link, found in the alarm's own lines of its YAML file."""
        assert alarm.loc is not None
        file = alarm.loc.file
        after = [a.loc.line for a in self.cat.alarms if a.loc and a.loc.file == file and a.loc.line > alarm.loc.line]
        lines = self.lines(Path(file))[: min(after, default=10**9) - 1]
        body = [""] * (alarm.loc.line - 1) + lines[alarm.loc.line - 1 :]
        hit = _line_of(body, link) if link is not None else None
        if hit:
            return file, hit[0], hit[1]
        return file, alarm.loc.line, link.href if link else ""


# ------------------------------------------------------------------ the check


def _check_links(pages: dict[str, Page], files: set[str], site_url: str, loc: _Locator) -> list[Finding]:
    out = []
    for page in pages.values():
        for link in page.links:
            hit = resolve(page.path, link.href, site_url, files)
            if hit is None:
                continue
            target, frag = hit
            ok = target is not None and (not frag or target not in pages or frag in pages[target].ids)
            if not ok:
                where, line, href = loc.where(page.path, link)
                out.append(Finding(where, line, f"broken link '{href}'"))
    return out


def _check_alarms(cat: Catalog, pages: dict[str, Page], plan: list[Redirect], loc: _Locator) -> list[Finding]:
    out = []
    ids = {a.id for a in cat.alarms}
    for a in cat.alarms:
        page = pages.get(f"alarms/{a.id}/index.html")
        if page is None or page.redirect:
            where = a.loc.file if a.loc else "runbook_data/alarms"
            out.append(Finding(where, a.loc.line if a.loc else 1, f"alarm '{a.id}' has no page at /alarms/{a.id}/"))
    for path, page in pages.items():
        parts = path.split("/")
        if parts[0] == "alarms" and path != "alarms/index.html" and not page.redirect and parts[1] not in ids:
            where, line, _ = loc.where(path)
            out.append(
                Finding(where, line, f"page /alarms/{parts[1]}/ belongs to no alarm of runbook_data "
                        "(pages under alarms/ are alarm pages)")
            )
    for r in plan:
        page = pages.get(r.path)
        if page is not None and not page.redirect:
            where, line, _ = loc.where(r.path)
            out.append(Finding(where, line, f"a real page hides the redirect /{r.path} → {r.target}"))
    return out


def read_published(path: Path) -> list[tuple[int, str]]:
    """(line, URL) of every entry of the published list; `#` lines are comments."""
    if not path.is_file():
        return []
    entries = []
    for n, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        text = text.strip()
        if text and not text.startswith("#"):
            entries.append((n, text))
    return entries


def _check_published(urls: list[str], listed: list[tuple[int, str]], shown: str, total: int) -> list[Finding]:
    out = []
    live = set(urls)
    for n, url in listed:
        if url not in live:
            out.append(
                Finding(shown, n, f"published URL '{url}' no longer resolves: restore the page or redirect it "
                        "(a renamed alarm keeps its former id in 'aliases')")
            )
    known = sorted(listed, key=lambda e: e[1])
    keys = [u for _, u in known]
    for url in sorted(live - set(keys)):
        i = bisect.bisect(keys, url)
        n = known[i][0] if i < len(known) else total + 1
        out.append(Finding(shown, n, f"URL '{url}' is not in the published list: run `{RECORD_COMMAND}` and commit it"))
    return out


def record(site: Path, published: Path) -> int:
    """Rewrite the published list from a built site; returns how many URLs it holds."""
    urls = site_urls(read_site(site))
    header = (
        "# Every URL the site has published (pages and redirects). A URL listed here must keep\n"
        "# resolving: tests/test_links.py fails otherwise. Regenerate with: runbook links --record\n"
    )
    write_atomic(published, header + "".join(u + "\n" for u in urls))
    return len(urls)


def check(site: Path, project: Path, cat: Catalog, site_url: str, rendered: Path | None = None,
          published: Path | None = None) -> list[str]:
    """Every broken link, unpaged alarm, alarm-less page and lost published URL, as located lines."""
    pages = read_site(site)
    files = site_files(site)
    loc = _Locator(project, site, rendered, cat)
    findings = _check_links(pages, files, site_url, loc)
    findings += _check_alarms(cat, pages, redirects(cat, site_url), loc)
    published = published or project / PUBLISHED
    if published.is_file():
        total = published.read_text(encoding="utf-8").count("\n")
        findings += _check_published(site_urls(pages), read_published(published), shown_path(published), total)
    else:
        missing = f"the list of published URLs is missing: run `{RECORD_COMMAND}` and commit it"
        findings.append(Finding(shown_path(published), 1, missing))
    return [str(f) for f in sorted(set(findings))]


def run(mkdocs_yml: Path, site: Path | None = None, record_list: bool = False) -> tuple[list[str], str]:
    """`runbook links`: (problems, one-line summary); builds the site into a temp dir unless given."""
    project = mkdocs_yml.resolve().parent
    cat = load(project / "runbook_data")
    with tempfile.TemporaryDirectory(prefix="runbook-links-") as tmp:
        rendered = None
        if site is None:
            # Not strict: the check reports every broken link with its line, where --strict
            # stops at mkdocs' first warning.
            built = build.build(mkdocs_yml, Path(tmp), strict=False)
            if not built.ok:
                raise RunbookError([Problem(Loc(str(mkdocs_yml)), "mkdocs build failed:\n" + built.output)])
            site, rendered = built.site_dir, built.rendered_dir
        start = time.perf_counter()
        note = ""
        if record_list:
            note = f"; recorded {record(site, project / PUBLISHED)} URLs in {PUBLISHED}"
        problems = check(site, project, cat, build.site_url(mkdocs_yml), rendered)
        pages = sum(1 for _ in site.rglob("*.html"))
    took = time.perf_counter() - start
    summary = f"{len(problems)} link problem(s) in {pages} pages, checked in {took:.2f} s{note}"
    return problems, summary
