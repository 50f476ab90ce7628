"""What was verified, on the page: each block's status per environment, from the gate's report.

`runbook verify --report r.json` records, for every block and environment, its result and a
digest of the block as rendered; a build given that report (`RUNBOOK_REPORT=r.json`) puts a
line under each block saying what the gate did with it:

- verified: the static check and a run against a simulated AWS (moto), with the date, the
  commit, and the AWS CLI and moto versions;
- checked statically only, with the reason moto cannot run it (an expected failure);
- not run, with the reason (skipped);
- failed the last verification, with its first line.

Without a report a block says "not verified yet"; a block whose digest the report does not
hold says "changed since the last verification". The wording never claims production.
"""

from __future__ import annotations

import functools
import hashlib
import html
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Report", "annotate", "block_digest", "claim", "load_report", "status_line", "status_page"]


def block_digest(env: str, text: str) -> str:
    """The identity of a block as rendered for one environment."""
    return hashlib.sha256(f"{env}\0{text.strip()}".encode()).hexdigest()[:20]


@dataclass(frozen=True)
class Report:
    meta: dict[str, Any]  # verified_at, commit, aws_cli, moto
    results: list[dict[str, Any]]

    # Looked up once per block of every page: made once per report, not per lookup.
    @functools.cached_property
    def by_digest(self) -> dict[str, dict[str, Any]]:
        return {r["digest"]: r for r in self.results if r.get("digest")}

    @functools.cached_property
    def covered(self) -> frozenset[tuple[str, str]]:
        """(page, environment) pairs the run took blocks from."""
        return frozenset((r.get("page", ""), r.get("env", "")) for r in self.results)


def load_report(path: str | Path | None) -> Report | None:
    """The gate's JSON report, or None without one (a missing file is an error of the caller's)."""
    if not path:
        return None
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return Report(dict(data.get("meta", {})), list(data.get("results", [])))


def _kind(result: dict[str, Any]) -> str:
    status, tier = result.get("status"), result.get("tier")
    if status == "passed":
        return "verified" if tier == "exec" else "static"
    if status == "xfailed":
        return "static"
    if status == "skipped":
        return "not-run"
    return "failed"


def _since(meta: dict[str, Any]) -> str:
    bits = [meta.get("verified_at", "?")]
    if meta.get("commit"):
        bits.append(f"commit {meta['commit']}")
    if meta.get("aws_cli"):
        bits.append(meta["aws_cli"])
    if meta.get("moto"):
        bits.append(f"moto {meta['moto']}")
    return ", ".join(bits)


def describe(report: Report | None, env: str, text: str, page: str | None = None) -> tuple[str, str]:
    """(kind, sentence) of one block in one environment (on `page`, as the report names pages)."""
    if report is None:
        return "unverified", "Not verified yet: this site was built without a gate report."
    result = report.by_digest.get(block_digest(env, text))
    if result is None and page is not None and (page, env) not in report.covered:
        return "unverified", (f"Not verified yet: the last verification ({report.meta.get('verified_at', '?')}) "
                              f"did not cover this page in {env}.")
    if result is None:
        return "changed", (f"Changed since the last verification ({report.meta.get('verified_at', '?')}): "
                           "not verified in this form yet.")
    kind = _kind(result)
    message = (result.get("message") or "").strip().splitlines()
    first = message[0][:200] if message else ""
    if kind == "verified":
        return kind, f"Verified against a simulated AWS (moto): static check and run ({_since(report.meta)})."
    if kind == "static":
        reason = first.removeprefix("xfail (").split("):")[0] if result.get("status") == "xfailed" else \
            "the last verification ran the static tier only"
        return kind, f"Checked statically only: {reason} ({_since(report.meta)})."
    if kind == "not-run":
        return kind, f"Not run by the gate: {first} ({_since(report.meta)})."
    return kind, f"Failed the last verification: {first} ({_since(report.meta)})."


def status_line(report: Report | None, env: str, text: str, page: str | None = None) -> str:
    kind, sentence = describe(report, env, text, page)
    return f'<p class="rb-status rb-status-{kind}">{html.escape(sentence)}</p>'


def counts(report: Report | None) -> Counter[str]:
    return Counter(_kind(r) for r in report.results) if report is not None else Counter()


def claim(report: Report | None) -> str:
    """The home page's sentence about verification: the status page's counts, no more."""
    if report is None:
        return "This build was made without a gate report: its commands are **not verified yet**."
    c = counts(report)
    total = sum(c.values())
    return (f"Of the site's {total} command blocks (one per environment), {c['verified']} were run against a "
            f"simulated AWS (moto), {c['static']} were checked statically only, {c['not-run']} were not run "
            f"and {c['failed']} failed, at the last verification ({_since(report.meta)}): "
            "see [Verification status](status.md). None of it ran in production.")


def status_page(report: Report | None) -> str:
    """Every command × environment with its result, as the report has them."""
    if report is None:
        return "No gate report was given to this build: nothing is verified yet.\n"
    rows = ["| page | line | environment | status | detail |", "|---|---|---|---|---|"]
    for r in report.results:
        kind = _kind(r)
        detail = (r.get("message") or "").strip().splitlines()
        page = r["page"].removeprefix("docs/")
        rows.append(f"| [{page}]({page}) | {r['line']} | {r['env']} | {kind} | "
                    f"{html.escape(detail[0][:120]).replace('|', '&#124;') if detail else ''} |")
    c = counts(report)
    head = (f"Last verification: {_since(report.meta)}, against a simulated AWS (moto). "
            f"{c['verified']} verified, {c['static']} checked statically only, {c['not-run']} not run, "
            f"{c['failed']} failed.\n\n")
    return head + "\n".join(rows) + "\n"


def annotate(markdown: str, page: str, envs: list[str], default_env: str, report: Report | None) -> str:
    """The page with a status line under every block the gate takes, at the block's indent."""
    from runbook.gate.snippets import extract
    from runbook.site.annotation import AnnotationError

    lines = markdown.split("\n")
    after: dict[int, str] = {}  # 0-based line of a closing fence → the status line to put after it
    try:
        snippets = extract(markdown, page, envs, default_env)
    except AnnotationError:  # a bad marker or an unclosed fence: the gate reports it, at its own path
        return markdown
    for s in snippets:
        if not s.executable:
            continue
        opening = lines[s.line - 1]
        indent = opening[: len(opening) - len(opening.lstrip())]
        fence = opening.strip()[:3]
        close = next((i for i in range(s.line, len(lines)) if lines[i].strip().startswith(fence)
                      and set(lines[i].strip()) == {fence[0]}), None)
        if close is not None:
            after[close] = indent + status_line(report, s.env, s.text, s.page)
    out: list[str] = []
    for i, line in enumerate(lines):
        out.append(line)
        if i in after:
            out += ["", after[i]]
    return "\n".join(out)
