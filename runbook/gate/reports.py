"""The gate's results for CI: GitHub annotations on the line to edit, a JUnit XML file, and the
job summary (a table per page and environment).

An annotation points at the YAML line a generated block comes from (its origin), and at the
page's own line for a hand-written block: the line a pull request's author changes.
"""

from __future__ import annotations

import datetime
import os
import subprocess
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runbook.errors import Loc, github_annotation
from runbook.gate.static.cli import version_of

if TYPE_CHECKING:
    from runbook.gate.run import Result

__all__ = ["FAILING", "github_lines", "junit_xml", "merge", "meta", "result_loc", "summary_markdown"]

FAILING = ("failed", "xpassed")


def result_loc(r: Result) -> Loc:
    """The line to edit: the YAML line of the block's first problem (its code's start for a
    failure when run), the YAML origin of a generated block, else the page's own line."""
    if r.code_at:
        file, line, col = r.code_at.rsplit(":", 2)
        return Loc(file, int(line) + max(r.block_line, 1) - 1, int(col))
    if r.origin:
        parts = r.origin.rsplit(":", 2)
        numbers = [p for p in parts[1:] if p.isdigit()]
        if len(parts) >= 2 and numbers:
            return Loc(parts[0], int(numbers[0]), int(numbers[1]) if len(numbers) > 1 else 1)
    return Loc(r.page, r.line, 1)


def github_lines(results: Sequence[Result]) -> list[str]:
    """An `::error` annotation per block that did not pass."""
    out = []
    for r in results:
        if r.status in FAILING:
            first = r.message.strip() or r.status
            out.append(github_annotation(result_loc(r), f"{r.page}:{r.line} [{r.env}] {r.tier}: {r.status}: {first}",
                                         title=f"runbook verify [{r.env}]"))
    return out


def junit_xml(results: Sequence[Result], seconds: float) -> str:
    """One test case per block and environment: failure, skipped, or passed (xfailed: passed)."""
    suite = ET.Element("testsuite", name="runbook verify", tests=str(len(results)),
                       failures=str(sum(r.status in FAILING for r in results)),
                       skipped=str(sum(r.status == "skipped" for r in results)), time=f"{seconds:.2f}")
    for r in results:
        loc = result_loc(r)
        case = ET.SubElement(suite, "testcase", classname=r.page.removesuffix(".md").replace("/", "."),
                             name=f"{r.page}:{r.line} [{r.env}]", file=loc.file, line=str(loc.line),
                             time=f"{r.seconds + r.static_seconds:.3f}")
        if r.status in FAILING:
            ET.SubElement(case, "failure", message=(r.message.strip().splitlines() or [r.status])[0][:500],
                          type=r.status).text = f"{r.message}\n\n{r.command}"
        elif r.status == "skipped":
            ET.SubElement(case, "skipped", message=r.message)
        elif r.status == "xfailed":
            ET.SubElement(case, "system-out").text = f"expected failure: {r.message}"
    ET.indent(suite)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"


_MARK = {"failed": "❌", "xpassed": "❌", "passed": "✅", "xfailed": "✅", "skipped": "⏭️"}


def summary_markdown(results: Sequence[Result]) -> str:
    """The job summary: per page, per environment, how many blocks passed, failed, were skipped."""
    envs = list(dict.fromkeys(r.env for r in results))
    cells: dict[tuple[str, str], Counter[str]] = {}
    for r in results:
        cells.setdefault((r.page, r.env), Counter())[r.status] += 1
    pages = list(dict.fromkeys(r.page for r in results))
    totals = Counter(r.status for r in results)
    lines = ["## runbook verify", "",
             f"{totals['passed'] + totals['xfailed']} passed ({totals['xfailed']} expected failures), "
             f"{totals['failed'] + totals['xpassed']} failed, {totals['skipped']} skipped; "
             "run against a simulated AWS (moto).", "",
             "| page | " + " | ".join(envs) + " |", "|---|" + "---|" * len(envs)]
    for page in pages:
        row = []
        for env in envs:
            c = cells.get((page, env), Counter())
            bad = c["failed"] + c["xpassed"]
            parts = [f"{_MARK['failed']} {bad} failed"] if bad else []
            if c["passed"] + c["xfailed"]:
                parts.append(f"{_MARK['passed']} {c['passed'] + c['xfailed']}")
            if c["skipped"]:
                parts.append(f"{_MARK['skipped']} {c['skipped']}")
            row.append(" · ".join(parts) or "–")
        lines.append(f"| `{page}` | " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def meta(aws_cli: str, project: Path) -> dict[str, str]:
    """When, at which commit, with which AWS CLI and moto the results were made."""
    def output(argv: list[str]) -> str:
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=20, cwd=project)
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return proc.stdout.strip() if proc.returncode == 0 else ""

    commit = os.environ.get("GITHUB_SHA", "")[:12] or output(["git", "rev-parse", "--short=12", "HEAD"])
    return {
        "verified_at": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit,
        "aws_cli": version_of(aws_cli),
        "moto": metadata.version("moto"),
    }


def merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One report from the reports of the shards of one run (`--shard K/N`): every result once,
    in page order, the summary counted again. Shards of different commits or tool versions, or
    that overlap, are refused (ValueError)."""
    from runbook.gate.run import REPORT_FIELDS, Result, impact_counts, summary

    metas = [p.get("meta", {}) for p in parts]
    for field in ("commit", "aws_cli", "moto"):
        if len({m.get(field) for m in metas}) > 1:
            raise ValueError(f"the reports come from different {field}s: {sorted({str(m.get(field)) for m in metas})}")
    results = [r for p in parts for r in p.get("results", [])]
    keys = [(r["page"], r["line"], r["env"]) for r in results]
    if len(set(keys)) != len(keys):
        raise ValueError("the reports overlap: a block appears in more than one (not shards of one run?)")
    results.sort(key=lambda r: (r["page"], r["line"], r["env"]))
    objects = [Result(**{k: r[k] for k in REPORT_FIELDS if k in r}) for r in results]
    seconds = max((p.get("summary", {}).get("seconds", 0) for p in parts), default=0)
    latest = max(metas, key=lambda m: m.get("verified_at", "")) if metas else {}
    return {"meta": latest, "results": results,
            "summary": {**summary(objects), "impact": impact_counts(objects), "shards": len(parts),
                        "seconds": seconds}}
