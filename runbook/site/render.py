"""Catalog → Markdown (pure functions). Commands become one content tab per environment."""

from __future__ import annotations

import html
import re
import textwrap
from collections.abc import Iterable
from urllib.parse import quote

from runbook.data import placeholders
from runbook.data.model import (
    AdmonitionBlock,
    Alarm,
    Block,
    Catalog,
    CodeBlock,
    Command,
    CommandBlock,
    EnvTableBlock,
    ListBlock,
    Metric,
    Node,
    PageFile,
    Section,
    Step,
    StepsBlock,
    TableBlock,
    TextBlock,
)
from runbook.site.caution import caution_box
from runbook.site.annotation import Annotation

SEVERITY_ADMONITION = {"critical": "danger", "high": "warning", "medium": "info", "low": "note"}
COMPARISON = {
    "GreaterThanThreshold": ">",
    "GreaterThanOrEqualToThreshold": "≥",
    "LessThanThreshold": "<",
    "LessThanOrEqualToThreshold": "≤",
}


def _indent(text: str, n: int = 4) -> str:
    return textwrap.indent(text, " " * n, lambda line: bool(line.strip()))


def origin_of(node: Node) -> str | None:
    """A generated block's origin (its marker's `origin`): the data's file:line of its node."""
    return f"{node.loc.file}:{node.loc.line}" if node.loc else None


def _code_at(cmd: Command) -> str | None:
    """Where the command's code starts in the data, so that a problem on its line k is
    reported at that YAML line (the command's own key: a generated command has none)."""
    key = "python" if cmd.python is not None else "shell"
    if cmd.anchor is None or cmd.loc_of(key) == cmd.loc:
        return None
    try:
        return str(cmd.anchor.text_at(0, key))
    except (KeyError, IndexError, TypeError):
        return None


def _code_span(text: str) -> str:
    fence = "``" if "`" in text else "`"
    return f"{fence}{text}{fence}"


# ------------------------------------------------------------------ values and prose


def per_env(cat: Catalog, pattern: str) -> dict[str, str]:
    """`pattern` rendered in every environment (operator inputs as <name>)."""
    return {
        e.name: placeholders.substitute(pattern, cat.scope(e.name), lambda n: f"<{n}>")
        for e in cat.environments
    }


def prose(cat: Catalog, text: str) -> str:
    """Markdown text with placeholders: one value if all environments agree, else each labelled."""

    deployed = placeholders.deploy_names(cat)

    def one(name: str) -> str:
        if name in cat.inputs:
            return f"&lt;{name}&gt;"
        if name in deployed:
            return f"the {name.rsplit('.', 1)[1]} of " + one(deployed[name])
        values = {e.name: cat.scope(e.name)[name] for e in cat.environments}
        if len(set(values.values())) == 1:
            return next(iter(values.values()))
        return " / ".join(f"{v} ({env})" for env, v in values.items())

    def span(m: re.Match[str]) -> str:
        # A command in a code span differs per environment: one span per environment, each
        # shown with its own tab choice, never "a (dev) / b (prod)" inside one command.
        code = m.group(0)
        names = {p.group(1) for p in placeholders.PLACEHOLDER.finditer(code)} - set(cat.inputs)
        if all(len({cat.scope(e.name).get(n) for e in cat.environments}) == 1 for n in names):
            return placeholders.PLACEHOLDER.sub(lambda p: one(p.group(1)), code)
        return "".join(
            f'<code class="rb-per-env" data-rb-env="{e}">{html.escape(v)}</code>'
            for e, v in per_env(cat, code.strip("`")).items()
        )

    text = _CODE_SPAN.sub(span, text)
    return placeholders.PLACEHOLDER.sub(lambda m: one(m.group(1)), text)


_CODE_SPAN = re.compile(r"`[^`\n]+`")


def severity_badge(severity: str) -> str:
    return f'<span class="rb-sev rb-sev-{severity}">{severity.capitalize()}</span>'


# ------------------------------------------------------------------ commands


def command_markdown(cat: Catalog, cmd: Command) -> str:
    """A command as content tabs, one per environment, each block preceded by its annotation."""
    parts: list[str] = []
    if cmd.caption:
        parts.append(prose(cat, cmd.caption) + "\n")
    marker = Annotation(
        origin=origin_of(cmd), skip=cmd.skip or None, xfail=cmd.xfail or None, expect=tuple(cmd.expect),
        stream=cmd.stream, timeout=cmd.timeout, mutates=cmd.mutates, gnu_only=cmd.gnu_only,
        code_at=_code_at(cmd),
    ).comment()
    # The undo's fill-ins too: what it puts back must be noted before the command runs.
    inputs = sorted({m.group(1) for m in placeholders.find(cmd.code + (cmd.undo or "")) if m.group(1) in cat.inputs})
    if inputs:  # before the block: read before pasting
        lines = ['!!! question "Fill in before running"']
        for name in inputs:
            spec = cat.inputs[name]
            lines.append(
                f"    - `<{name}>`: {prose(cat, spec.description)} "
                f"*How to find it:* {prose(cat, spec.how_to_find)}"
            )
        parts.append("\n".join(lines) + "\n")
    codes = per_env(cat, cmd.code.rstrip("\n"))
    undos = per_env(cat, cmd.undo.rstrip("\n")) if cmd.undo is not None else {}
    for i, env in enumerate(cat.environments):
        if cmd.only and env.name not in cmd.only:
            body = f"Not applicable in {env.name}: this command applies to {', '.join(cmd.only)} only.\n"
        else:
            box = caution_box(cmd.lang, codes[env.name], env, undos.get(env.name))
            body = f"{box}\n{marker}\n```{cmd.lang}\n{codes[env.name]}\n```\n"
        # `===!` starts a tab set of its own: two commands in a row never merge into one
        opener = "===!" if i == 0 else "==="
        parts.append(f'{opener} "{env.name}"\n\n{_indent(body)}')
    return "\n".join(parts)


def commands_markdown(cat: Catalog, commands: Iterable[Command]) -> str:
    return "\n".join(command_markdown(cat, c) for c in commands)


def adhoc_command(cat: Catalog, code: str, lang: str = "bash", gnu_only: str | None = None) -> str:
    """A command written in a hand-made page (through the `command` macro); `gnu_only`: why it
    uses a form only GNU tools take (as in the data)."""
    key = "python" if lang == "python" else "shell"
    fields: dict[str, str] = {key: code}
    if gnu_only is not None:
        fields["gnu_only"] = gnu_only
    return command_markdown(cat, Command.model_validate(fields))


# ------------------------------------------------------------------ blocks and sections


def _step(cat: Catalog, number: int, step: Step) -> str:
    body = prose(cat, step.text) + "\n"
    if step.details:
        body += "\n" + "\n".join(f"- {prose(cat, d)}" for d in step.details) + "\n"
    if step.commands:
        body += "\n" + commands_markdown(cat, step.commands)
    first, _, rest = body.partition("\n")
    return f"{number}. {first}\n{_indent(rest)}"


def steps_markdown(cat: Catalog, steps: list[Step]) -> str:
    return "\n".join(_step(cat, i, s) for i, s in enumerate(steps, 1))


def _table(columns: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(columns) + " |", "|" + "|".join(" --- " for _ in columns) + "|"]
    out += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(out) + "\n"


def block_markdown(cat: Catalog, block: Block) -> str:
    if isinstance(block, TextBlock):
        return prose(cat, block.text).rstrip("\n") + "\n"
    if isinstance(block, ListBlock):
        mark = "1." if block.numbered else "-"
        return "\n".join(f"{mark} {prose(cat, i)}" for i in block.items) + "\n"
    if isinstance(block, StepsBlock):
        return steps_markdown(cat, block.steps)
    if isinstance(block, CommandBlock):
        return command_markdown(cat, block.command)
    if isinstance(block, CodeBlock):
        marker = Annotation(origin=origin_of(block), skip=block.reason).comment()
        caption = prose(cat, block.caption) + "\n\n" if block.caption else ""
        code = prose(cat, block.code.rstrip("\n"))
        return f"{caption}{marker}\n```{block.lang}\n{code}\n```\n"
    if isinstance(block, TableBlock):
        return _table(block.columns, [[prose(cat, c) for c in row] for row in block.rows])
    if isinstance(block, EnvTableBlock):
        rows = [
            [env.title + f" (`{env.name}`)"]
            + [placeholders.substitute(c.value, cat.scope(env.name), lambda n: f"<{n}>") for c in block.env_table]
            for env in cat.environments
        ]
        return _table(["Environment"] + [c.title for c in block.env_table], rows)
    if isinstance(block, AdmonitionBlock):
        title = f' "{block.title}"' if block.title else ""
        return f"!!! {block.admonition}{title}\n\n{_indent(prose(cat, block.text))}\n"
    raise TypeError(f"unknown block {block!r}")


def section_markdown(cat: Catalog, section: Section, level: int = 2) -> str:
    parts = [f"{'#' * level} {section.title} {{#{section.id}}}\n"]
    parts += [block_markdown(cat, b) for b in section.content]
    parts += [section_markdown(cat, s, level + 1) for s in section.sections]
    return "\n".join(parts)


def procedure_page(cat: Catalog, page_id: str) -> str:
    page: PageFile = cat.page(page_id)
    parts = [f"# {page.title}\n"]
    parts += [prose(cat, page.intro) + "\n"] if page.intro else []
    parts += [section_markdown(cat, s) for s in page.sections]
    return "\n".join(parts)


# ------------------------------------------------------------------ alarms


def metric_text(cat: Catalog, m: Metric) -> str:
    stat = m.extended_statistic or m.statistic
    dims = ", ".join(f"{k}={prose(cat, v)}" for k, v in m.dimensions.items())
    return f"`{m.namespace}` `{m.name}` ({dims}), {stat} over {m.period} s"


def env_switch(cat: Catalog, names: dict[str, str] | None = None) -> str:
    """The "Commands for" switch at the top of a page with commands; it also carries what the
    page's script needs: each environment's title, the default, production, and on an alarm
    page the alarm's name in each environment (a search hit by that name opens it there)."""
    links = []
    for e in cat.environments:
        attrs = {"href": f"?env={e.name}", "data-env": e.name, "data-title": e.title}
        if e.production:
            attrs["data-production"] = ""
        if names:
            attrs["data-name"] = names[e.name]
        attr_text = " ".join(f'{k}="{html.escape(v)}"' if v else k for k, v in attrs.items())
        links.append(f"<a {attr_text}>{html.escape(e.title)} <code>{e.name}</code></a>")
    return (f'<nav class="rb-env-switch" aria-label="Environment of the commands" '
            f'data-default="{cat.default_env.name}"><span class="rb-env-switch-label">Commands for:'
            f"</span> {' '.join(links)}</nav>\n")


def console_links(cat: Catalog, a: Alarm, env: str) -> dict[str, str]:
    """Console links of the alarm in `env`: the alarm, its log group (where its metric names
    one), the dashboard. Each a URL of the environment's region."""
    region = cat.env(env).region
    base = f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
    scope = cat.scope(env)
    out = {"alarm": f"{base}#alarmsV2:alarm/{quote(per_env(cat, a.name)[env], safe='')}"}
    group = alarm_log_group(cat, a)
    if group is not None:
        name = placeholders.substitute(group, scope, lambda n: f"<{n}>")
        out["logs"] = f"{base}#logsV2:log-groups/log-group/{quote(name, safe='').replace('%', '$25')}"
    dashboards = [k for k, r in cat.resources.items() if r.type == "dashboard"]
    if dashboards:
        out["dashboard"] = f"{base}#dashboards/dashboard/{quote(scope[dashboards[0]], safe='')}"
    return out


def alarm_log_group(cat: Catalog, a: Alarm) -> str | None:
    """The log group (a pattern) where the alarm's errors are: its function's, or the API's."""
    metrics = [a.metric] if a.metric else [q.metric for q in a.metrics if q.metric]
    for m in metrics:
        assert m is not None
        function = m.dimensions.get("FunctionName")
        if function:
            return "/aws/lambda/" + function
        if m.namespace == "AWS/ApiGateway":
            groups = [r.name for r in cat.resources.values() if r.type == "log_group" and "api" in r.name]
            if groups:
                return groups[0]
    return None


def still_firing(cat: Catalog, a: Alarm) -> Step:
    """The first step of every alarm page: the alarm's state now, and its recent history."""
    state = Command.model_validate({
        "caption": "State, reason and since when:",
        "shell": f"aws cloudwatch describe-alarms --alarm-names {a.name} \\\n"
                 "  --query 'MetricAlarms[0].{State: StateValue, Since: StateUpdatedTimestamp, "
                 "Reason: StateReason}'",
        "expect": ["State", "Since"],
    })
    history = Command.model_validate({
        "caption": "Its last state changes:",
        "shell": f"aws cloudwatch describe-alarm-history --alarm-name {a.name} \\\n"
                 "  --history-item-type StateUpdate --max-items 10 \\\n"
                 "  --query 'AlarmHistoryItems[].[Timestamp, HistorySummary]' --output table",
        "xfail": "moto does not implement DescribeAlarmHistory",
    })
    at = {"anchor": a.anchor}  # a problem with them is the alarm's: its YAML line
    return Step.model_validate({"text": "**Is it still firing?**"}).model_copy(
        update={"commands": [state.model_copy(update=at), history.model_copy(update=at)], **at})


def _console_table(cat: Catalog, a: Alarm) -> str:
    labels = {"alarm": "Alarm", "logs": "Logs", "dashboard": "Dashboard"}
    rows = []
    for e in cat.environments:
        links = console_links(cat, a, e.name)
        rows.append([f"{e.title} (`{e.name}`)",
                     " · ".join(f"[{labels[k]}]({url})" for k, url in links.items())])
    return "In the console:\n\n" + _table(["Environment", "CloudWatch console"], rows)


def drill_box(cat: Catalog, a: Alarm) -> str:
    """A collapsed box from the alarm's drill: the scenario, what each step shows in it, and
    the resolution that fixed it (all checked by `runbook drill` against the simulated AWS)."""
    d = a.drill
    assert d is not None
    lines = [f"*{prose(cat, d.scenario)}*", ""]
    shown: dict[int, list[str]] = {1: ["the alarm in ALARM, with the datapoints that crossed the threshold"]}
    for f in d.finds:
        shown.setdefault(f.step, []).append(prose(cat, f.shows))
    titles = {1: "Is it still firing?", **{i: a.investigation[i - 2].text for i in range(2, len(a.investigation) + 2)}}
    for number in sorted(shown):
        title = prose(cat, titles.get(number, "")).rstrip(":.")
        lines.append(f"- **Step {number}** ({title}) shows {'; '.join(shown[number])}.")
    lines.append(f"- **Resolution:** *{prose(cat, d.resolution)}*; afterwards {prose(cat, d.recovered.shows)}.")
    lines += ["", "This drill runs in CI against a simulated AWS (moto), in every environment: "
                  "`runbook drill --alarm " + a.id + "`."]
    return '??? example "What it looks like when this fires"\n\n' + _indent("\n".join(lines)) + "\n"


def alarm_page(cat: Catalog, alarm_id: str, contacts: str = "") -> str:
    """The page the alarm links to: on top, what is needed first (severity, response time,
    what it means, the environment and the first command); the details after."""
    a = cat.alarm(alarm_id)
    group = cat.group_of(alarm_id)
    level = next(lv for lv in cat.escalation.severity_levels if lv.severity == a.severity)
    sign = COMPARISON[a.comparison]
    names = per_env(cat, a.name)
    out = [
        f'!!! {SEVERITY_ADMONITION[a.severity]} "{a.severity.capitalize()} · {level.level} · '
        f'respond within {level.response_time}"\n',
        _indent(prose(cat, a.summary)) + "\n",
        env_switch(cat, names),
        "## Investigation {#investigation}\n",
    ]
    out.append(_step(cat, 1, still_firing(cat, a)) + "\n" + _indent(_console_table(cat, a)))
    out += [_step(cat, i, step) for i, step in enumerate(a.investigation, 2)]
    if a.drill is not None:
        out.append(drill_box(cat, a))
    out.append("## Resolution {#resolution}\n")
    for r in a.resolution:
        body = f"- **{prose(cat, r.when)}**: {prose(cat, r.action)}\n"
        if r.commands:
            body += "\n" + _indent(commands_markdown(cat, r.commands))
        out.append(body)

    out.append("## What it watches {#what-it-watches}\n")
    if a.description:
        out.append(prose(cat, a.description) + "\n")
    if a.impact:
        out.append(f"**Impact:** {prose(cat, a.impact)}\n")
    if a.metric:
        watched = metric_text(cat, a.metric)
    else:
        lines = []
        for q in a.metrics:
            if q.metric:
                lines.append(f"`{q.id}` = {metric_text(cat, q.metric)}")
            else:
                lines.append(f"`{q.id}` = `{q.expression}`" + (f" ({q.label})" if q.label else ""))
        watched = "the metric math below.\n\n" + "\n".join(f"- {line}" for line in lines)
    out.append(
        f"**Watches:** {watched}\n\n**Fires when** the value is {sign} the threshold for "
        f"{a.datapoints_to_alarm or a.evaluation_periods} of {a.evaluation_periods} period(s); "
        f"missing data is treated as `{a.treat_missing_data}`.\n"
    )
    rows = []
    for env in cat.environments:
        topic = env.alarm_topics[a.severity]
        rows.append([f"{env.title} (`{env.name}`)", f"`{names[env.name]}`",
                     f"{sign} {cat.threshold(a, env.name)}", f"`{topic}`"])
    out.append(_table(["Environment", "CloudWatch alarm", "Threshold", "Notifies (SNS)"], rows))
    out.append("## Who to call {#who-to-call}\n")
    out.append(contacts or (
        f"{severity_badge(a.severity)} **{level.level}**: respond within {level.response_time}. "
        f"{level.notify}. Escalation path: [Escalation](../escalation.md).\n"))
    out.append("## Related alarms {#related-alarms}\n")
    if a.related:
        for rel in a.related:
            other = cat.alarm(rel)
            out.append(f"- [{other.title}]({other.id}.md) {severity_badge(other.severity)}")
        out.append("")
    else:
        out.append("None.\n")
    out.append(f"*Group:* [{group.title}](index.md#{group.group})\n")
    return "\n".join(out)


def alarm_index(cat: Catalog) -> str:
    out = []
    envs = cat.environments
    for g in cat.groups:
        out.append(f"## {g.title} {{#{g.group}}}\n")
        if g.intro:
            out.append(prose(cat, g.intro) + "\n")
        rows = []
        for a in g.alarms:
            names = per_env(cat, a.name)
            rows.append(
                [f"[{a.title}]({a.id}.md)", severity_badge(a.severity), g.title.removesuffix(" Alarms")]
                + [f"`{names[e.name]}`" for e in envs]
            )
        out.append(_table(["Alarm", "Severity", "Service"] + [f"Name in {e.name}" for e in envs], rows))
    return "\n".join(out)


def command_effects(cat: Catalog) -> str:
    """What the runbook's commands do to AWS, counted by the IAM access levels of their calls."""
    from runbook.access.levels import Impact, impact
    from runbook.access.operations import operations

    commands = [*cat.commands(), *(c for a in cat.alarms for c in still_firing(cat, a).commands)]
    counts = {i: 0 for i in Impact}
    for c in commands:
        counts[impact(operations(c.lang, c.code))] += 1
    return (
        f"Of the runbook's {len(commands)} commands, {counts[Impact.READ_ONLY]} only read, "
        f"{counts[Impact.CHANGES]} change state and {counts[Impact.DELETES]} delete, by the IAM access "
        "level of every AWS call they make. A command that changes state has a caution box saying "
        "what it changes in that environment, and its tab label carries a ⚠ (filled red in production)."
    )
