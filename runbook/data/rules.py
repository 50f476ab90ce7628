"""Cross-checks of a validated Catalog: names, references and shapes that span files."""

from __future__ import annotations

import difflib
from typing import Any

from runbook.access import check as access_check
from runbook.data import alarm_text, placeholders, portable, shell_check
from runbook.data.model import SEVERITIES, Alarm, Catalog, Environment, PageFile
from runbook.data.yaml_reader import Source, strings
from runbook.drill import check as drill_check
from runbook.errors import Loc, Problem


def _suggest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def cross_check(
    cat: Catalog,
    sources: dict[str, Source],
    broken: set[str] | frozenset[str] = frozenset(),
    site_url: str | None = None,
) -> list[Problem]:
    """Every problem between files or nodes that a schema alone cannot see.

    `broken`: ids of alarms whose definition failed to validate; references to them are not reported.
    `site_url`: what alarm descriptions link to (mkdocs.yml's); None skips measuring them.
    """
    problems: list[Problem] = []

    def at(node: Any) -> Loc:
        return node.loc or Loc("runbook_data")

    # Environments: unique names, the same value keys everywhere.
    seen_env: dict[str, Environment] = {}
    for e in cat.environments:
        if e.name in seen_env:
            problems.append(Problem(at(e), f"duplicate environment '{e.name}'"))
        seen_env[e.name] = e
    defaults = [e for e in cat.environments if e.default]
    if not defaults:
        problems.append(Problem(at(cat.environments[0]), "no environment is `default: true`: "
                                "declare the one a fresh reader's commands are for"))
    for e in defaults[1:]:
        problems.append(Problem(at(e), f"environment '{e.name}' is `default: true`, and so is "
                                       f"'{defaults[0].name}': only one can be"))
    all_keys = sorted({k for e in cat.environments for k in e.values})
    for e in cat.environments:
        for k in all_keys:
            if k not in e.values:
                other = next(o.name for o in cat.environments if k in o.values)
                problems.append(
                    Problem(at(e), f"environment '{e.name}' lacks value '{k}' that '{other}' declares")
                )
        for sev in SEVERITIES:
            if sev not in e.alarm_topics:
                problems.append(Problem(at(e), f"environment '{e.name}' has no alarm topic for '{sev}'"))

    # Names: environment placeholders and operator inputs share one namespace.
    env_names = set(placeholders.BUILTINS) | set(all_keys)
    for rname, res in cat.resources.items():
        env_names.add(rname)
        env_names.add(f"{rname}.name")
        env_names.update(f"{rname}.{a}" for a in placeholders.RESOURCE_ATTRS[res.type])
    for name in cat.inputs:
        if name in env_names:
            problems.append(Problem(at(cat.inputs[name]), f"operator input '{name}' shadows a value"))
    known = sorted(env_names | set(cat.inputs))
    deployed = placeholders.deploy_names(cat)
    # A drill's calls in the world may name deploy-time ids (the world knows them), the values
    # its earlier calls saved, and {n} (a repeated call's count).
    drill_names = {"n"} | {k for a in cat.alarms if a.drill for c in a.drill.state for k in c.save}
    for source in sources.values():
        for path, text in strings(source.data):
            in_drill_call = "drill" in path and "params" in path
            for m in placeholders.find(text):
                name = m.group(1)
                if in_drill_call and (name in deployed or name in drill_names):
                    continue
                if name in deployed and "dimensions" not in path:
                    problems.append(
                        Problem(
                            source.text_loc(path, m.start()),
                            f"'{{{name}}}' is assigned by AWS at deploy time: only alarm dimensions may use it "
                            f"(commands look it up by name, e.g. with get-apis)",
                        )
                    )
                elif name not in env_names and name not in cat.inputs and name not in deployed:
                    problems.append(
                        Problem(
                            source.text_loc(path, m.start()),
                            f"unknown placeholder '{{{name}}}'{_suggest(name, known)}",
                        )
                    )
    # Global names: an S3 bucket name is unique across all accounts, so it must differ per environment.
    for rname, res in cat.resources.items():
        if res.type != "s3_bucket" or problems_in(res.name, env_names):
            continue
        by_name: dict[str, str] = {}
        for e in cat.environments:
            value = cat.scope(e.name)[rname]
            if by_name.get(value) == e.name:
                continue  # a duplicate environment, reported above
            if value in by_name:
                problems.append(
                    Problem(
                        at(res),
                        f"bucket name '{value}' is the same in {by_name[value]} and {e.name}: "
                        f"S3 bucket names are global, put {{env}} in it",
                    )
                )
                break
            by_name[value] = e.name
    numeric = {k for k in all_keys if all(isinstance(e.values.get(k), int | float) for e in cat.environments)}
    for res in cat.resources.values():
        for m in placeholders.find(res.name):
            if m.group(1) not in set(placeholders.BUILTINS) | set(all_keys):
                problems.append(Problem(at(res), f"resource name may only use environment values: {res.name}"))

    # Alarms: unique ids and names, known related alarms, a well-formed metric.
    ids: dict[str, Alarm] = {}
    for a in cat.alarms:
        for key in (a.id, *a.aliases):
            if key in ids:
                first = ids[key]
                problems.append(Problem(at(a), f"duplicate alarm id '{key}' (first defined at {at(first)})"))
            else:
                ids[key] = a
        if "{env}" not in a.name:
            problems.append(Problem(at(a), f"alarm name '{a.name}' must contain {{env}}"))
    for a in cat.alarms:
        for i, rel in enumerate(a.related):
            if rel in broken:
                continue
            if rel not in ids or rel in ids[rel].aliases:
                problems.append(
                    Problem(
                        a.loc_of("related", i) or at(a),
                        f"related alarm '{rel}' does not exist{_suggest(rel, sorted(ids))}",
                    )
                )
        problems += _check_metric(a, numeric)

    # Commands: exactly one language.
    for cmd in cat.commands():
        if (cmd.shell is None) == (cmd.python is None):
            problems.append(Problem(at(cmd), "a command needs exactly one of 'shell' or 'python'"))
        for i, env_name in enumerate(cmd.only):
            if env_name not in seen_env:
                hint = _suggest(env_name, sorted(seen_env))
                problems.append(Problem(cmd.loc_of("only", i) or at(cmd), f"unknown environment '{env_name}'{hint}"))
        if cmd.skip and cmd.xfail:
            problems.append(Problem(at(cmd), "a command cannot be both 'skip' and 'xfail'"))

    # Pages and escalation.
    page_ids: dict[str, PageFile] = {}
    for p in cat.pages:
        if p.page in page_ids or p.page == "alarms":
            problems.append(Problem(at(p), f"duplicate page '{p.page}'"))
        page_ids[p.page] = p
    levels: set[str] = set()
    for i, lvl in enumerate(cat.escalation.severity_levels):
        if lvl.severity in levels:
            problems.append(Problem(cat.escalation.loc_of("severity_levels", i) or at(cat.escalation),
                                    f"severity '{lvl.severity}' has more than one escalation level"))
        levels.add(lvl.severity)
    for sev in SEVERITIES:
        if sev not in levels:
            problems.append(Problem(at(cat.escalation), f"severity '{sev}' has no escalation level"))
        elif not cat.escalation.ladder(sev):
            problems.append(Problem(cat.escalation.loc_of("path") or at(cat.escalation),
                                    f"severity '{sev}' engages no tier of the escalation path"))

    # What the export and the gate's static tier would reject: long descriptions, shell syntax,
    # forms that work on Linux but not on macOS (or the reverse).
    if site_url is not None:  # export-alarms measures them itself, in the environment it exports
        problems += alarm_text.description_problems(cat, site_url)
    problems += shell_check.check(cat)
    problems += portable.check(cat)
    problems += access_check.check(cat)  # `mutates:` against the API's own access levels
    problems += drill_check.check(cat)  # incident drills: their steps, calls, and that they breach
    return problems


def warnings(cat: Catalog) -> list[Problem]:
    """What is valid but unfinished, as located `warning: ...` lines: a placeholder contact
    (the pages show it as "not configured"). Warnings do not fail `runbook check` or the build."""
    problems = []
    for i, c in enumerate(cat.escalation.contacts):
        if c.configured:
            continue
        loc = c.loc_of("value") or cat.escalation.loc_of("contacts", i) or Loc("runbook_data")
        shown = f"'{c.value.strip()}' is a placeholder" if c.value.strip() else "it has no value"
        problems.append(Problem(loc, f"warning: contact '{c.channel}' is not configured: {shown}; "
                                     f"pages show it as not configured until it is set"))
    return sorted(problems)


def problems_in(text: str, known: set[str]) -> bool:
    """Whether `text` names a placeholder that `known` lacks (reported elsewhere)."""
    return any(m.group(1) not in known for m in placeholders.find(text))


def _check_metric(a: Alarm, numeric: set[str]) -> list[Problem]:
    problems = []
    loc = a.loc or Loc("runbook_data")
    if (a.metric is None) == (not a.metrics):
        problems.append(Problem(loc, f"alarm '{a.id}' needs exactly one of 'metric' or 'metrics'"))
    metrics = [a.metric] if a.metric else [q.metric for q in a.metrics if q.metric]
    for m in metrics:
        if m is not None and (m.statistic is None) == (m.extended_statistic is None):
            problems.append(
                Problem(m.loc or loc, "a metric needs exactly one of 'statistic' or 'extended_statistic'")
            )
    if a.metrics:
        returned = [q for q in a.metrics if q.return_data]
        if len(returned) != 1:
            problems.append(Problem(loc, f"alarm '{a.id}': exactly one metric query must have return_data"))
        for q in a.metrics:
            if (q.metric is None) == (q.expression is None):
                problems.append(
                    Problem(q.loc or loc, "a metric query needs exactly one of 'metric' or 'expression'")
                )
    if isinstance(a.threshold, str):
        name = a.threshold.strip("{}")
        if name not in numeric:
            problems.append(
                Problem(loc, f"threshold '{a.threshold}' must name a numeric value of every environment")
            )
    return problems
