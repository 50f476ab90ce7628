"""What `runbook check` rejects in a drill, at its YAML line: a step, resolution, input, query
or call that does not exist, a test that does not compile, and a scenario that does not breach
its alarm in some environment (with the computed datapoints and the threshold)."""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable
from typing import Any

import botocore.session
import jmespath
import jmespath.exceptions
import regex
from botocore.exceptions import UnknownServiceError

from runbook.data.model import Alarm, Catalog, Command, Drill, Finding, Node, Recovery, WorldCall
from runbook.errors import Loc, Problem, RunbookError

from .evaluate import EvaluationError, evaluate, exported


def _at(node: Node, *sub: str | int) -> Loc:
    return node.loc_of(*sub) or node.loc or Loc("runbook_data")


def _hint(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


@functools.cache
def _operations(service: str) -> frozenset[str] | None:
    """boto3 method names of a service's operations (None: no such service)."""
    try:
        model = botocore.session.get_session().get_service_model(service)
    except UnknownServiceError:
        return None
    return frozenset(botocore.xform_name(op) for op in model.operation_names)


def _call(call: WorldCall) -> list[Problem]:
    service, _, operation = call.call.partition(".")
    known = _operations(service)
    if known is None:
        return [Problem(_at(call, "call"), f"unknown AWS service '{service}' (boto3's client name, e.g. lambda)")]
    if operation not in known:
        hint = _hint(operation, sorted(known))
        return [Problem(_at(call, "call"), f"'{service}' has no operation '{operation}'{hint}")]
    problems = []
    for name, expression in call.save.items():
        problems += _jmespath(call, expression, "save", name)
    return problems


def _jmespath(node: Node, expression: str, *key: str) -> list[Problem]:
    try:
        jmespath.compile(expression)
    except jmespath.exceptions.JMESPathError as exc:
        return [Problem(_at(node, *key), f"not valid JMESPath: {expression!r}: {exc}")]
    return []


def _test(node: Finding | Recovery) -> list[Problem]:
    if node.regex is not None:
        try:
            regex.compile(node.regex)
        except regex.error as exc:
            return [Problem(_at(node, "regex"), f"not a valid regular expression: {exc}")]
        return []
    return _jmespath(node, node.jmespath or "", "jmespath")


def _runs(commands: list[Command]) -> bool:
    return any(not (c.skip or c.xfail) for c in commands)


def _metric_ids(a: Alarm) -> list[str]:
    return ["metric"] if a.metric is not None else [q.id for q in a.metrics if q.metric is not None]


def _drill(cat: Catalog, a: Alarm, d: Drill, definitions: Callable[[str], dict[str, Any] | None]) -> list[Problem]:
    problems: list[Problem] = []
    whens = [r.when for r in a.resolution]
    chosen = next((r for r in a.resolution if r.when == d.resolution), None)
    if chosen is None:
        problems.append(Problem(_at(d, "resolution"), f"alarm '{a.id}' has no resolution '{d.resolution}'"
                                                      f"{_hint(d.resolution, whens)} (known: {', '.join(whens)})"))
    elif not _runs(chosen.commands):
        problems.append(Problem(_at(d, "resolution"), f"the resolution '{d.resolution}' has no command the drill "
                                                      "can run: a drill's resolution must fix something"))
    last = len(a.investigation) + 1  # the page's numbering: step 1 is "Is it still firing?"
    for f in d.finds:
        if f.step > last:
            problems.append(Problem(_at(f, "step"), f"alarm '{a.id}' has no step {f.step}: "
                                                    f"its page has steps 1 to {last}"))
        elif f.step > 1 and not _runs(a.investigation[f.step - 2].commands):
            problems.append(Problem(_at(f, "step"), f"step {f.step} of alarm '{a.id}' has no command the drill can "
                                                    "run (none, or only skip/xfail ones): it cannot reveal anything"))
        problems += _test(f)
    problems += _test(d.recovered)
    for name in d.fill_ins:
        if name not in cat.inputs:
            problems.append(Problem(_at(d, "fill_ins", name), f"unknown operator input '{name}'"
                                                              f"{_hint(name, sorted(cat.inputs))}"))
    for call in [*d.state, d.recovered]:
        problems += _call(call)
    ids = _metric_ids(a)
    for key in d.metric_data:
        if key not in ids:
            problems.append(Problem(_at(d, "metric_data", key), f"alarm '{a.id}' has no metric '{key}' "
                                                                f"(its metrics: {', '.join(ids)})"))
    missing = [i for i in ids if i not in d.metric_data]
    if missing:
        problems.append(Problem(_at(d, "metric_data"), f"no data for the alarm's {', '.join(missing)}: the "
                                                        "scenario gives every metric the alarm reads"))
    if not problems:
        problems += _breaches(cat, a, d, definitions)
    return problems


def _breaches(cat: Catalog, a: Alarm, d: Drill, definitions: Callable[[str], dict[str, Any] | None]) -> list[Problem]:
    """The scenario must put the alarm, as the export defines it, in ALARM in every environment."""
    problems = []
    for env in cat.environments:
        alarms = definitions(env.name)
        if alarms is None:
            continue  # the alarms' or the environment's own problems are reported where they are defined
        kwargs = alarms[a.id]
        try:
            ev = evaluate(kwargs, d.metric_data)
        except EvaluationError as exc:
            problems.append(Problem(_at(d, "metric_data"), f"the drill cannot evaluate the alarm: {exc}"))
            break
        if ev.state != "ALARM":
            problems.append(Problem(_at(d, "metric_data"), f"the scenario does not breach alarm '{a.id}' in "
                                                            f"{env.name}: {ev.describe()}"))
    return problems


def check(cat: Catalog) -> list[Problem]:
    """Every drill's problems."""
    @functools.cache
    def definitions(env: str) -> dict[str, dict[str, Any]] | None:
        """The exported alarms of env, made once (None: the data they come from has problems)."""
        try:
            return exported(cat, env)
        except (RunbookError, KeyError, TypeError, ValueError):
            return None

    problems: list[Problem] = []
    for a in cat.alarms:
        if a.drill is not None:
            problems += _drill(cat, a, a.drill, definitions)
    return problems
