"""The platform map on the home page: Catalog → Graphviz → inline SVG.

The boxes and the request flow between them are drawn from TOPOLOGY (inventory keys: the
inventory says what exists, not what calls what). Which alarms sit on which box is derived:
each metric an alarm watches names a resource through its dimensions (FunctionName,
TableName, QueueName, ApiId, CanaryName...), and that resource is a box. An alarm that names
no box is a located error, never an alarm left off the map.

Graphviz's ``dot`` (Debian package ``graphviz``) lays the graph out; its SVG is inlined into
the page, its links made plain ``href`` (the link check follows them) and its black made
``currentColor``, so the map takes the theme's text color in the light and the dark scheme.
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

from runbook.data import placeholders
from runbook.data.model import SEVERITIES, Alarm, Catalog, Metric, ResourceType, Severity
from runbook.errors import Loc, Problem, RunbookError, shown_path
from runbook.site import render

DEBIAN_PACKAGE = "graphviz"
DOT_TIMEOUT = 30.0  # seconds; the map lays out in well under one

# (namespace, dimension) → the type of inventory resource the dimension's value names.
DIMENSIONS: dict[tuple[str, str], ResourceType] = {
    ("AWS/Lambda", "FunctionName"): "lambda_function",
    ("AWS/DynamoDB", "TableName"): "dynamodb_table",
    ("AWS/SQS", "QueueName"): "sqs_queue",
    ("AWS/ApiGateway", "ApiId"): "http_api",
    ("AWS/ApiGateway", "ApiName"): "http_api",
    ("CloudWatchSynthetics", "CanaryName"): "canary",
    ("AWS/CloudFront", "DistributionId"): "cloudfront_distribution",
    ("AWS/S3", "BucketName"): "s3_bucket",
}

TYPE_LABEL: dict[ResourceType, str] = {
    "lambda_function": "Lambda function",
    "dynamodb_table": "DynamoDB table",
    "sqs_queue": "SQS queue",
    "log_group": "Log group",
    "http_api": "HTTP API (API Gateway)",
    "secret": "Secret",
    "canary": "Synthetics canary",
    "s3_bucket": "S3 bucket",
    "cloudfront_distribution": "CloudFront distribution",
    "sns_topic": "SNS topic",
    "dashboard": "Dashboard",
}

# The same colors as the severity badges of docs/assets/runbook.css; white text on each.
SEVERITY_COLOR: dict[Severity, str] = {
    "critical": "#c62828", "high": "#ef6c00", "medium": "#1565c0", "low": "#546e7a",
}

# What the SVG says "currentColor" with: dot knows no such color, so the source uses this one
# (no box, line or text of the map is drawn in it otherwise) and the SVG gets it replaced.
_FG = "#010203"
_FONT = "Helvetica"

# A box's name for the reader; not an inventory resource, so it has no alarms.
VISITOR = "visitor"


@dataclass(frozen=True)
class Box:
    key: str  # inventory key (VISITOR for the reader's browser)
    title: str
    cluster: str = ""  # boxes with the same cluster are framed together


@dataclass(frozen=True)
class Edge:
    tail: str
    head: str
    label: str = ""
    dashed: bool = False  # not the request path: failures, replays, checks


@dataclass(frozen=True)
class Topology:
    boxes: tuple[Box, ...]
    edges: tuple[Edge, ...]


# The request flow, after the inventory's descriptions: the website (CloudFront in front of S3),
# the HTTP API in front of the lead handler with the lead queue buffering between them, the
# handler writing to the leads table, the dead-letter queue of the lead queue and its replay, and
# the canaries calling the API and loading the website.
TOPOLOGY = Topology(
    boxes=(
        Box(VISITOR, "Visitor's browser"),
        Box("website_cdn", "Website CDN", cluster="Website"),
        Box("website_bucket", "Website files", cluster="Website"),
        Box("api", "HTTP API"),
        Box("lead_queue", "Lead queue", cluster="Lead processing"),
        Box("lead_handler", "Lead handler", cluster="Lead processing"),
        Box("leads_table", "Leads table", cluster="Lead processing"),
        Box("dlq", "Dead-letter queue", cluster="Lead processing"),
        Box("dlq_replay", "DLQ replay", cluster="Lead processing"),
        Box("website_canary", "Website canary", cluster="Synthetics"),
        Box("api_canary", "API canary", cluster="Synthetics"),
    ),
    edges=(
        Edge(VISITOR, "website_cdn", "HTTPS"),
        Edge("website_cdn", "website_bucket", "origin"),
        Edge(VISITOR, "api", "lead (POST)"),
        Edge("api", "lead_queue", "enqueue"),
        Edge("lead_queue", "lead_handler", "trigger"),
        Edge("lead_handler", "leads_table", "write"),
        Edge("lead_queue", "dlq", "failed", dashed=True),
        Edge("dlq", "dlq_replay", "read", dashed=True),
        Edge("dlq_replay", "lead_queue", "replay", dashed=True),
        Edge("website_canary", "website_cdn", "load", dashed=True),
        Edge("api_canary", "api", "/health", dashed=True),
    ),
)


class PlatformMapError(RuntimeError):
    """The map cannot be drawn on this machine (no `dot`, dot failed or hung)."""


# ------------------------------------------------------------------ alarms → boxes


def _metrics(alarm: Alarm) -> Iterator[Metric]:
    if alarm.metric is not None:
        yield alarm.metric
    for q in alarm.metrics:
        if q.metric is not None:
            yield q.metric


def _named_resource(cat: Catalog, kind: ResourceType, value: str) -> str | None:
    """The inventory key a dimension value names: `{key}` / `{key.attr}`, or a literal name."""
    m = placeholders.PLACEHOLDER.fullmatch(value)
    if m:
        key = m.group(1).split(".", 1)[0]
        res = cat.resources.get(key)
        return key if res is not None and res.type == kind else None
    for e in cat.environments:  # a name, or a pattern such as kanjona-{env}-leads
        scope = cat.scope(e.name)
        name = placeholders.PLACEHOLDER.sub(lambda m: scope.get(m.group(1), m.group(0)), value)
        for key, res in cat.resources.items():
            if res.type == kind and scope[key] == name:
                return key
    return None


def _alarm_loc(cat: Catalog, alarm: Alarm, metric: Metric | None = None) -> Loc:
    loc = metric.loc_of("dimensions") if metric is not None else alarm.loc_of("id")
    return loc or alarm.loc or cat.group_of(alarm.id).loc or Loc(shown_path(cat.root / "alarms"))


def assign(cat: Catalog, topology: Topology = TOPOLOGY) -> dict[str, list[Alarm]]:
    """Box key → the alarms on it, in catalog order; RunbookError for an alarm on no box."""
    problems: list[Problem] = []
    keys = {b.key for b in topology.boxes}
    for b in topology.boxes:
        if b.key != VISITOR and b.key not in cat.resources:
            problems.append(Problem(Loc(shown_path(cat.root / "inventory.yaml")),
                                    f"the platform map draws '{b.key}', which the inventory does not declare"))
    on: dict[str, list[Alarm]] = {b.key: [] for b in topology.boxes}
    for alarm in cat.alarms:
        found: list[str] = []
        before = len(problems)
        for metric in _metrics(alarm):
            for dim, value in metric.dimensions.items():
                kind = DIMENSIONS.get((metric.namespace, dim))
                if kind is None:
                    continue
                key = _named_resource(cat, kind, value)
                if key is None:
                    problems.append(Problem(_alarm_loc(cat, alarm, metric), (
                        f"alarm '{alarm.id}': {metric.namespace} {dim}={value!r} names no {kind} "
                        "of the inventory, so the platform map cannot place the alarm")))
                elif key not in keys:
                    problems.append(Problem(_alarm_loc(cat, alarm, metric), (
                        f"alarm '{alarm.id}': {metric.namespace} {dim}={value!r} names '{key}', "
                        "which the platform map does not draw (add a box to TOPOLOGY in "
                        "runbook/site/platform_map.py)")))
                elif key not in found:
                    found.append(key)
        if not found and len(problems) == before:  # no dimension even tried to name a resource
            watched = ", ".join(f"{m.namespace} {sorted(m.dimensions)}" for m in _metrics(alarm)) or "no metric"
            known = ", ".join(sorted({f"{ns} {d}" for ns, d in DIMENSIONS}))
            problems.append(Problem(_alarm_loc(cat, alarm), (
                f"alarm '{alarm.id}' watches {watched}: no dimension names a resource on the platform "
                f"map (known dimensions: {known})")))
        for key in found:
            on[key].append(alarm)
    if problems:
        raise RunbookError(problems)
    return on


# ------------------------------------------------------------------ the Graphviz source


def _h(text: str) -> str:
    return html.escape(text, quote=True)


def _shown_name(cat: Catalog, key: str) -> str:
    """The resource's name with what differs per environment shown as ‹env› (not a placeholder)."""
    res = cat.resources[key]

    def one(m: re.Match[str]) -> str:
        values = {cat.scope(e.name).get(m.group(1), m.group(0)) for e in cat.environments}
        return values.pop() if len(values) == 1 else f"‹{m.group(1)}›"

    return placeholders.PLACEHOLDER.sub(one, res.name)


def _label(cat: Catalog, box: Box, alarms: list[Alarm]) -> str:
    rows = [f'<TR><TD COLSPAN="2" ALIGN="LEFT"><B>{_h(box.title)}</B></TD></TR>']
    if box.key != VISITOR:
        res = cat.resources[box.key]
        for line in (TYPE_LABEL[res.type], _shown_name(cat, box.key)):
            rows.append(f'<TR><TD COLSPAN="2" ALIGN="LEFT"><FONT POINT-SIZE="9">{_h(line)}</FONT></TD></TR>')
        if not alarms:
            rows.append('<TR><TD COLSPAN="2" ALIGN="LEFT"><FONT POINT-SIZE="9"><I>no alarms</I></FONT></TD></TR>')
    for sev in SEVERITIES:
        of_sev = [a for a in alarms if a.severity == sev]
        for i, a in enumerate(of_sev):
            badge = (f'<TD BGCOLOR="{SEVERITY_COLOR[sev]}" ROWSPAN="{len(of_sev)}" VALIGN="TOP">'
                     f'<FONT COLOR="#ffffff" POINT-SIZE="9"><B>{sev.upper()}</B></FONT></TD>') if i == 0 else ""
            tip = f"{a.title} ({sev}): {render.prose(cat, a.summary)}"
            rows.append(f'<TR>{badge}<TD ALIGN="LEFT" HREF="alarms/{_h(a.id)}/" TOOLTIP="{_h(tip)}">'
                        f'{_h(a.title)}</TD></TR>')
    return ('<<TABLE BORDER="1" CELLBORDER="0" CELLSPACING="2" CELLPADDING="2" STYLE="rounded" '
            f'COLOR="{_FG}">{"".join(rows)}</TABLE>>')


def dot_source(cat: Catalog, topology: Topology = TOPOLOGY) -> str:
    """The map in the DOT language."""
    on = assign(cat, topology)
    out = [
        "digraph platform {",
        '  graph [rankdir=TB bgcolor="transparent" nodesep=0.3 ranksep=0.5 '
        f'fontname="{_FONT}" fontsize=11 fontcolor="{_FG}" color="{_FG}" style="dashed,rounded"];',
        f'  node [shape=plain fontname="{_FONT}" fontsize=11 fontcolor="{_FG}" color="{_FG}" class="rb-pm-box"];',
        f'  edge [fontname="{_FONT}" fontsize=9 fontcolor="{_FG}" color="{_FG}" arrowsize=0.7 class="rb-pm-flow"];',
    ]
    clusters: dict[str, list[Box]] = {}
    for b in topology.boxes:
        clusters.setdefault(b.cluster, []).append(b)
    for n, (cluster, boxes) in enumerate(clusters.items()):
        indent = "    " if cluster else "  "
        if cluster:
            out.append(f'  subgraph cluster_{n} {{ label="{_h(cluster)}";')
        for b in boxes:
            out.append(f'{indent}"{b.key}" [label={_label(cat, b, on[b.key])}];')
        if cluster:
            out.append("  }")
    for e in topology.edges:
        style = ' style="dashed"' if e.dashed else ""
        out.append(f'  "{e.tail}" -> "{e.head}" [label="{_h(e.label)}"{style}];')
    out.append("}")
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------ dot → SVG for the page


def run_dot(source: str, timeout: float = DOT_TIMEOUT) -> str:
    """SVG from Graphviz's dot; PlatformMapError (naming the Debian package) when it cannot."""
    dot = shutil.which("dot")
    if dot is None:
        raise PlatformMapError(
            f"the platform map needs Graphviz's `dot`, which is not on PATH: install the Debian package "
            f"'{DEBIAN_PACKAGE}' (apt-get install {DEBIAN_PACKAGE}; scripts/bootstrap.sh does it)")
    try:
        proc = subprocess.run([dot, "-Tsvg"], input=source, capture_output=True, text=True, timeout=timeout,
                              check=False)
    except subprocess.TimeoutExpired:
        raise PlatformMapError(f"the platform map: {dot} -Tsvg did not finish within {timeout:g} s") from None
    except OSError as exc:
        raise PlatformMapError(f"the platform map: {dot} does not run ({exc})") from None
    stderr = proc.stderr.strip()
    # A warning means the source asked for something dot did not draw (an unknown color...).
    if proc.returncode != 0 or "Warning:" in stderr or "Error:" in stderr:
        raise PlatformMapError(f"the platform map: {dot} -Tsvg failed (exit {proc.returncode}): {stderr}")
    return proc.stdout


_A_ATTRS = re.compile(r'\s([\w:-]+)="([^"]*)"')


def _link(m: re.Match[str]) -> str:
    """<a xlink:href=.. xlink:title=..> → <a href=..><title>..</title> (HTML's inline SVG needs no xlink)."""
    attrs = dict(_A_ATTRS.findall(m.group(1)))
    href = attrs.get("xlink:href") or attrs.get("href")
    if href is None:
        return "<a>"
    title = attrs.get("xlink:title", "")
    return f'<a href="{href}">' + (f"<title>{title}</title>" if title else "")


def inline_svg(svg: str) -> str:
    """dot's SVG document → an <svg> element for an HTML page, drawn in the text color."""
    start = svg.find("<svg")
    if start < 0:
        raise PlatformMapError("the platform map: dot printed no <svg> element")
    svg = svg[start:]
    svg = re.sub(r"<!--.*?-->", "", svg, flags=re.S)
    svg = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", svg)
    svg = re.sub(r'\s+id="[^"]*"', "", svg)  # graph0, node1... would collide with the page's ids
    svg = re.sub(r"<a(\s[^>]*)?>", _link, svg)
    svg = svg.replace(f'"{_FG}"', '"currentColor"')
    svg = svg.replace("<svg ", '<svg class="rb-platform-map-svg" role="img" aria-label="Platform map" ', 1)
    return "\n".join(line for line in svg.splitlines() if line.strip())


def platform_map(cat: Catalog) -> str:
    """The home page's map: an inline SVG in a raw HTML block, with a line on how to read it."""
    svg = inline_svg(run_dot(dot_source(cat)))
    legend = " ".join(render.severity_badge(s) for s in SEVERITIES)
    return (
        f'<div class="rb-platform-map">\n{svg}\n</div>\n\n'
        f"Each box lists the alarms on that resource by severity ({legend}); choose an alarm for its page. "
        "Dashed lines are not the request path: failed messages and their replay, and the canaries' checks.\n"
    )
