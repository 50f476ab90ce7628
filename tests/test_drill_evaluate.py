"""The drills' CloudWatch alarm evaluator against the rules AWS documents for statistics,
M out of N datapoints, the evaluation range and missing data."""

from __future__ import annotations

from typing import Any

import pytest

from runbook.data.load import load_cached
from runbook.drill.evaluate import EvaluationError, evaluate, exported, expression, judge, periods, statistic
from tests.conftest import ROOT

X, N_, _ = 5.0, 0.0, None  # breaching (> 1), not breaching, missing


def state(points: list[float | None], n: int = 3, m: int = 3, treat: str = "missing", current: str = "OK") -> str:
    return judge(points, n, m, 1.0, "GreaterThanThreshold", treat, current).state


@pytest.mark.parametrize(("stat", "want"), [
    ("Sum", 10.0), ("Average", 2.5), ("Minimum", 1.0), ("Maximum", 4.0), ("SampleCount", 4.0),
    ("p50", 2.0), ("p99", 4.0), ("p75", 3.0),
])
def test_statistics_over_a_periods_samples(stat: str, want: float) -> None:
    assert statistic([3.0, 1.0, 4.0, 2.0], stat) == want


def test_a_period_without_samples_is_a_missing_datapoint() -> None:
    assert statistic([], "Sum") is None
    with pytest.raises(EvaluationError):
        statistic([1.0], "TM(10%:90%)")


def test_periods_end_now_and_group_minutes() -> None:
    minutes: list[Any] = [1, 1, 1, 1, 1, 2, None, 2, [2, 2], 2]
    assert periods(minutes, 300, "Sum", 2) == [5.0, 10.0]
    assert periods(minutes, 300, "Sum", 3) == [None, 5.0, 10.0]  # before the data: missing
    assert periods(minutes, 60, "Maximum", 3) == [2.0, 2.0, 2.0]
    assert periods([None] * 5, 300, "Average", 1) == [None]


# The documentation's cases: an alarm of 3 evaluation periods, 3 datapoints to alarm, whose
# evaluation range holds 5 datapoints (oldest first here).
@pytest.mark.parametrize(("points", "missing", "ignore", "breaching", "not_breaching"), [
    ([N_, N_, N_, X, X], "OK", "OK", "OK", "OK"),  # nothing missing among the last 3: 2 breach of 3
    ([N_, N_, X, X, X], "ALARM", "ALARM", "ALARM", "ALARM"),
    ([X, X, _, X, _], "ALARM", "ALARM", "ALARM", "ALARM"),  # 3 real points in range: no filling
    ([N_, N_, _, X, _], "OK", "OK", "OK", "OK"),  # the 3 most recent real points: N_, N_, X
    ([_, _, _, _, X], "OK", "OK", "ALARM", "OK"),  # 1 real point: filled as the treatment says
    ([_, _, _, X, X], "OK", "OK", "ALARM", "OK"),
    ([_, _, _, _, N_], "OK", "OK", "OK", "OK"),
    ([_, _, _, _, _], "INSUFFICIENT_DATA", "ALARM-before", "ALARM", "OK"),  # nothing at all
])
def test_missing_data_treatments(points: list[float | None], missing: str, ignore: str, breaching: str,
                                 not_breaching: str) -> None:
    assert state(points, treat="missing") == missing
    assert state(points, treat="ignore", current="ALARM-before") == ignore
    assert state(points, treat="breaching") == breaching
    assert state(points, treat="notBreaching") == not_breaching


@pytest.mark.parametrize(("points", "want"), [
    ([N_, N_, N_, X, X], "ALARM"),  # 2 of the last 3
    ([N_, N_, X, N_, X], "ALARM"),
    ([N_, N_, X, N_, N_], "OK"),
    ([N_, N_, N_, N_, X], "OK"),
])
def test_m_out_of_n(points: list[float | None], want: str) -> None:
    assert state(points, n=3, m=2, treat="notBreaching") == want


@pytest.mark.parametrize(("comparison", "value", "want"), [
    ("GreaterThanThreshold", 1.0, "OK"), ("GreaterThanOrEqualToThreshold", 1.0, "ALARM"),
    ("LessThanThreshold", 1.0, "OK"), ("LessThanOrEqualToThreshold", 1.0, "ALARM"),
    ("LessThanThreshold", 0.5, "ALARM"),
])
def test_comparisons_at_the_threshold(comparison: str, value: float, want: str) -> None:
    assert judge([value], 1, 1, 1.0, comparison, "missing").state == want


def test_metric_math() -> None:
    assert expression("100 * errors / invocations", {"errors": 5.0, "invocations": 50.0}) == 10.0
    assert expression("100 * errors / invocations", {"errors": 5.0, "invocations": 0.0}) is None
    assert expression("100 * (a + b) / c", {"a": 1.0, "b": None, "c": 4.0}) is None
    assert expression("SUM([a, b])", {"a": 1.0, "b": None}) == 1.0
    assert expression("SUM([a, b])", {"a": None, "b": None}) is None
    assert expression("-a + MAX([a, b])", {"a": 1.0, "b": 3.0}) == 2.0
    for bad in ("errors ** 2", "FILL(errors, 0)", "unknown_id + 1", "1 +"):
        with pytest.raises(EvaluationError):
            expression(bad, {"errors": 1.0})


def _alarm(alarm_id: str, env: str) -> dict[str, Any]:
    return exported(load_cached(ROOT / "runbook_data"), env)[alarm_id]


def test_the_exported_error_rate_alarm_uses_each_environments_threshold() -> None:
    data = {"errors": [2] * 10, "invocations": [100] * 10}  # 2 %: over prod's 1 %, under dev's 5 %
    assert evaluate(_alarm("lambda-error-rate", "prod"), data).state == "ALARM"
    dev = evaluate(_alarm("lambda-error-rate", "dev"), data)
    assert dev.state == "OK"
    assert "[2, 2] > 5" in dev.describe()


def test_a_single_period_spike_does_not_fire_a_two_of_two_alarm() -> None:
    spike = {"metric": [None, None, 100, None, None, None, None, 0, None, None]}
    assert evaluate(_alarm("api-canary-failed", "dev"), spike).state == "OK"


def test_dynamodb_alarms_always_ignore_missing_data() -> None:
    ev = evaluate(_alarm("dynamodb-throttles", "dev"), {"read_throttles": [], "write_throttles": []})
    assert ev.treat_missing == "ignore"
    assert ev.state == "OK"  # retained: nothing to evaluate


def test_percentile_alarms() -> None:
    slow = {"metric": [[100, 200, 20000]] * 15}
    fast = {"metric": [[100, 200, 300]] * 15}
    assert evaluate(_alarm("lambda-duration", "dev"), slow).state == "ALARM"
    assert evaluate(_alarm("lambda-duration", "dev"), fast).state == "OK"


def test_a_finding_that_backtracks_without_end_fails_instead_of_hanging() -> None:
    from runbook.data.model import Finding
    from runbook.drill.findings import reveal

    finding = Finding.model_validate({"step": 2, "regex": "(a|aa)+$", "shows": "nothing"})
    found = reveal(finding, "a" * 40 + "b")
    assert not found.ok and "took longer than" in found.detail
    ok = reveal(Finding.model_validate({"step": 2, "regex": r"^(\d+) TimeoutError$", "at_least": 10,
                                        "shows": "x"}), "3 ValidationError\n15 TimeoutError\n")
    assert ok.ok and "15" in ok.detail
    few = reveal(Finding.model_validate({"step": 2, "jmespath": "max(Datapoints[].Sum)", "at_least": 30,
                                         "shows": "x"}), '{"Datapoints": [{"Sum": 4.0}, {"Sum": 12.0}]}')
    assert not few.ok and "at least 30" in few.detail
