"""CloudWatch's alarm evaluation, on a drill's metric data: would the exported alarm fire?

It takes the alarm as the export defines it (`put_metric_alarm` arguments: one metric, or
metric math) and one value a minute per metric, and follows CloudWatch's documented rules
("Configuring how CloudWatch alarms treat missing data"):

* each period's datapoint is the statistic over the samples of that period (periods end now);
  a metric-math expression is computed per period from its inputs;
* CloudWatch looks at more periods than Evaluation Periods, the *evaluation range* (here N + 2,
  the five datapoints of the documentation's 3-of-3 example);
* no datapoint missing among the last N: those N are evaluated;
* some missing, but at least N real datapoints in the range: the N most recent real ones are
  evaluated, and the missing-data treatment plays no part;
* fewer than N real datapoints: `breaching` / `notBreaching` fill the gaps (as few as needed,
  every real datapoint counts); `missing` and `ignore` fill nothing. With no real datapoint
  at all, `missing` gives INSUFFICIENT_DATA and `ignore` keeps the current state;
* alarms on AWS/DynamoDB metrics always ignore missing data (PutMetricAlarm's reference);
* the alarm is in ALARM when at least M (Datapoints to Alarm) evaluated datapoints breach.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runbook.data.model import Catalog

Minute = float | int | list[float] | list[int] | None
Point = float | None  # one period's datapoint; None: missing

COMPARE: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanThreshold": lambda v, t: v > t,
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}
SIGN = {"GreaterThanThreshold": ">", "GreaterThanOrEqualToThreshold": ">=",
        "LessThanThreshold": "<", "LessThanOrEqualToThreshold": "<="}
EXTRA_PERIODS = 2  # the evaluation range beyond Evaluation Periods
SITE_URL = "https://runbook.invalid/"  # evaluating needs the definitions, not their links


class EvaluationError(ValueError):
    """The alarm or the data cannot be evaluated (an unknown id, an expression out of reach)."""


@dataclass(frozen=True)
class Evaluation:
    state: str  # ALARM | OK | INSUFFICIENT_DATA | unchanged (ignore, nothing to evaluate)
    points: tuple[Point, ...]  # the evaluation range, oldest first
    evaluated: tuple[float | str, ...]  # what was compared: values, or "breaching"/"not breaching" fills
    breaching: int
    needed: int  # M
    of: int  # N
    threshold: float
    comparison: str
    treat_missing: str

    def describe(self) -> str:
        shown = ", ".join(v if isinstance(v, str) else _num(v) for v in self.evaluated) or "none"
        return (f"{self.breaching} of the last {self.of} datapoints [{shown}] {SIGN[self.comparison]} "
                f"{_num(self.threshold)} (needs {self.needed}; missing data: {self.treat_missing}) → {self.state}")


def _num(v: float) -> str:
    return f"{v:g}" if abs(v) < 1e6 else f"{v:.6g}"


# ------------------------------------------------------------------ statistics


def statistic(samples: Sequence[float], stat: str) -> float | None:
    """One period's statistic over its samples (None: no sample, a missing datapoint)."""
    if not samples:
        return None
    if stat == "Sum":
        return float(sum(samples))
    if stat == "Average":
        return float(sum(samples)) / len(samples)
    if stat == "Minimum":
        return float(min(samples))
    if stat == "Maximum":
        return float(max(samples))
    if stat == "SampleCount":
        return float(len(samples))
    if stat.startswith("p"):  # nearest rank: the smallest sample with at least p% at or below it
        p = float(stat[1:])
        ordered = sorted(samples)
        rank = max(1, math.ceil(p / 100 * len(ordered)))
        return float(ordered[rank - 1])
    raise EvaluationError(f"statistic '{stat}' is not one the drill can compute")


def periods(minutes: Sequence[Minute], period_seconds: int, stat: str, count: int) -> list[Point]:
    """The last `count` datapoints (oldest first) of one-value-a-minute data, periods ending now."""
    width = max(1, period_seconds // 60)
    out: list[Point] = []
    for k in range(count, 0, -1):
        end = len(minutes) - (k - 1) * width
        chunk = minutes[max(0, end - width):max(0, end)]
        samples: list[float] = []
        for v in chunk:
            if isinstance(v, list):
                samples += [float(x) for x in v]
            elif v is not None:
                samples.append(float(v))
        out.append(statistic(samples, stat))
    return out


# ------------------------------------------------------------------ metric math


_FUNCTIONS: dict[str, Callable[[list[float]], float]] = {
    "SUM": lambda xs: float(sum(xs)),
    "AVG": lambda xs: float(sum(xs)) / len(xs),
    "MIN": lambda xs: float(min(xs)),
    "MAX": lambda xs: float(max(xs)),
}


def expression(text: str, values: Mapping[str, Point]) -> Point:
    """A metric-math expression at one period: arithmetic over ids and SUM/AVG/MIN/MAX([...]).
    A missing input, or a division by zero, gives no datapoint, as in CloudWatch."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        raise EvaluationError(f"metric math '{text}' is not an expression the drill can compute") from None

    def ev(node: ast.AST) -> Point:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return float(node.value)
        if isinstance(node, ast.Name):
            if node.id not in values:
                raise EvaluationError(f"metric math '{text}' names '{node.id}', which no query defines")
            return values[node.id]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            v = ev(node.operand)
            return None if v is None else -v
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub | ast.Mult | ast.Div):
            a, b = ev(node.left), ev(node.right)
            if a is None or b is None:
                return None
            if isinstance(node.op, ast.Add):
                return a + b
            if isinstance(node.op, ast.Sub):
                return a - b
            if isinstance(node.op, ast.Mult):
                return a * b
            return None if b == 0 else a / b
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS
                and len(node.args) == 1 and isinstance(node.args[0], ast.List)):
            present = [v for v in (ev(e) for e in node.args[0].elts) if v is not None]
            return _FUNCTIONS[node.func.id](present) if present else None
        raise EvaluationError(f"metric math '{text}': '{ast.unparse(node)}' is not something the drill can compute")

    return ev(tree)


# ------------------------------------------------------------------ the alarm


def datapoints(alarm: Mapping[str, Any], data: Mapping[str, Sequence[Minute]], count: int) -> list[Point]:
    """The alarm's last `count` datapoints from the drill's data (`metric` for a single-metric
    alarm, the query ids for metric math)."""
    if "Metrics" not in alarm:
        if "metric" not in data:
            raise EvaluationError("the alarm watches one metric: give its data as `metric`")
        stat = alarm.get("ExtendedStatistic") or alarm["Statistic"]
        return periods(data["metric"], int(alarm["Period"]), stat, count)
    queries = alarm["Metrics"]
    series: dict[str, list[Point]] = {}
    for q in queries:
        if "MetricStat" in q:
            if q["Id"] not in data:
                raise EvaluationError(f"no data for the alarm's query '{q['Id']}'")
            ms = q["MetricStat"]
            series[q["Id"]] = periods(data[q["Id"]], int(ms["Period"]), ms["Stat"], count)
    returned = [q for q in queries if q.get("ReturnData")]
    if len(returned) != 1:
        raise EvaluationError("the alarm's metric math must return exactly one series")
    out = returned[0]
    if "MetricStat" in out:
        return series[out["Id"]]
    return [expression(out["Expression"], {k: v[i] for k, v in series.items()}) for i in range(count)]


def exported(catalog: Catalog, env: str) -> dict[str, dict[str, Any]]:
    """Alarm id → its `put_metric_alarm` arguments in env, as the export makes them."""
    # Imported here: the export needs the data layer, whose checks use this module.
    from runbook.export.alarms import put_metric_alarm_kwargs

    return dict(zip((a.id for a in catalog.alarms), put_metric_alarm_kwargs(catalog, env, SITE_URL), strict=True))


def namespaces(alarm: Mapping[str, Any]) -> set[str]:
    if "Metrics" not in alarm:
        return {alarm["Namespace"]}
    return {q["MetricStat"]["Metric"]["Namespace"] for q in alarm["Metrics"] if "MetricStat" in q}


def evaluate(alarm: Mapping[str, Any], data: Mapping[str, Sequence[Minute]]) -> Evaluation:
    """Whether the exported alarm (`put_metric_alarm` arguments) is in ALARM on `data`."""
    n = int(alarm["EvaluationPeriods"])
    m = int(alarm.get("DatapointsToAlarm") or n)
    threshold = float(alarm["Threshold"])
    comparison = alarm["ComparisonOperator"]
    treat = alarm.get("TreatMissingData", "missing")
    if "AWS/DynamoDB" in namespaces(alarm):
        treat = "ignore"
    points = datapoints(alarm, data, n + EXTRA_PERIODS)
    return judge(points, n, m, threshold, comparison, treat)


def judge(points: Sequence[Point], n: int, m: int, threshold: float, comparison: str, treat: str,
          current: str = "OK") -> Evaluation:
    """The state the evaluation range `points` (oldest first) puts an M-of-N alarm in."""
    breaches = COMPARE[comparison]
    real = [p for p in points if p is not None]
    recent = list(points[-n:])
    evaluated: list[float | str]
    if None not in recent:
        evaluated = [p for p in recent if p is not None]
    elif len(real) >= n:
        evaluated = list(real[-n:])
    elif treat in ("breaching", "notBreaching"):
        fill = "breaching" if treat == "breaching" else "not breaching"
        evaluated = [*real, *[fill] * (n - len(real))]
    else:
        evaluated = list(real)
    count = sum(1 for v in evaluated if v == "breaching" or (not isinstance(v, str) and breaches(v, threshold)))
    if not evaluated:
        state = "INSUFFICIENT_DATA" if treat == "missing" else current
    else:
        state = "ALARM" if count >= m else "OK"
    return Evaluation(state, tuple(points), tuple(evaluated), count, m, n, threshold, comparison, treat)
