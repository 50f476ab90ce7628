"""CloudWatch metrics, alarms (from the alarm export) and dashboards."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from runbook.data.model import Metric
from runbook.export.alarms import put_metric_alarm_kwargs

from .context import World, chunks, iso
from .story import ALARMING, COMPARISON_WORDS, DENSE_MINUTES, HISTORY_MINUTES, UNITS, canary_runs


class Metrics:
    """CloudWatch metrics, alarms and dashboards."""

    def __init__(self, world: World) -> None:
        self.world = world

    # -- CloudWatch metrics ----------------------------------------------------------------

    def _series(self) -> dict[tuple[str, str, tuple[tuple[str, str], ...]], str | None]:
        """Every (namespace, metric, dimensions) the world publishes, with its unit."""
        w = self.world
        series: dict[tuple[str, str, tuple[tuple[str, str], ...]], str | None] = {}

        def add(ns: str, name: str, unit: str | None = None, **dims: str) -> None:
            key = (ns, name, tuple(sorted(dims.items())))
            series[key] = unit or series.get(key) or UNITS.get(name)

        for _, fn in w.names("lambda_function"):
            for metric in ("Invocations", "Errors", "Duration", "Throttles", "ConcurrentExecutions"):
                add("AWS/Lambda", metric, FunctionName=fn)
        for _, table in w.names("dynamodb_table"):
            for metric in ("ConsumedReadCapacityUnits", "ConsumedWriteCapacityUnits"):
                add("AWS/DynamoDB", metric, TableName=table)
            for metric in ("ReadThrottleEvents", "WriteThrottleEvents"):
                add("AWS/DynamoDB", metric, TableName=table)
            # Published per TableName and Operation only, as AWS does.
            for op in ("PutItem", "GetItem", "Query"):
                add("AWS/DynamoDB", "SuccessfulRequestLatency", TableName=table, Operation=op)
            add("AWS/DynamoDB", "ThrottledRequests", TableName=table, Operation="PutItem")
        if w.api_id:
            for metric in ("Count", "4xx", "5xx", "Latency", "IntegrationLatency"):
                add("AWS/ApiGateway", metric, ApiId=w.api_id)
        for _, queue in w.names("sqs_queue"):
            for metric in (
                "ApproximateNumberOfMessagesVisible",
                "ApproximateAgeOfOldestMessage",
                "NumberOfMessagesSent",
            ):
                add("AWS/SQS", metric, QueueName=queue)
        for _, canary in w.names("canary"):
            for metric in ("SuccessPercent", "Duration", "Failed"):
                add("CloudWatchSynthetics", metric, CanaryName=canary)
        for alarm in w.catalog.alarms:
            metrics = [alarm.metric] if alarm.metric else [q.metric for q in alarm.metrics if q.metric]
            for m in metrics:
                if m is not None:
                    add(m.namespace, m.name, m.unit, **self.dimensions(m))
        return series

    def dimensions(self, m: Metric) -> dict[str, str]:
        """An alarm metric's dimensions in this world (deploy-time ids filled in)."""
        w = self.world
        return {k: w.text(v) for k, v in m.dimensions.items()}

    @staticmethod
    def slots() -> list[int]:
        """Minutes ago that carry a data point: every minute of the last half hour (the windows
        commands ask for), every five minutes before (an hour-long graph keeps its shape)."""
        return list(range(HISTORY_MINUTES, DENSE_MINUTES, -5)) + list(range(DENSE_MINUTES, 0, -1))

    def slot(self, t: datetime) -> int:
        """The data point (minutes ago) that counts an event that happened at t."""
        w = self.world
        minutes = int((w.now - t).total_seconds() // 60) + 1
        return minutes if minutes <= DENSE_MINUTES else -(-minutes // 5) * 5

    def _failures(self) -> dict[int, list[str]]:
        w = self.world
        out: dict[int, list[str]] = {}
        for r in w.invocations:
            if r.outcome != "ok":
                out.setdefault(self.slot(r.start), []).append(r.kind)
        return out

    def _value(self, ns: str, name: str, dims: dict[str, str], minutes: int) -> float | list[float] | None:
        """One data point of a series (None: nothing published at that minute)."""
        w = self.world
        r = w.rng
        width = 1 if minutes <= DENSE_MINUTES else 5  # minutes one data point covers
        failures = self._failures().get(minutes, [])
        if ns == "AWS/Lambda":
            busy = dims.get("FunctionName") == w.lead_handler()
            if name == "Duration":
                values = [round(r.uniform(90, 450), 1) for _ in range(3)]
                if busy and "timeout" in failures:
                    values.append(30000.0)
                elif busy and "dynamodb" in failures:
                    values.append(round(r.uniform(1800, 2300), 1))
                return values
            return {
                "Invocations": float(width * (r.randint(40, 60) if busy else r.randint(0, 1))),
                "Errors": float(len(failures) if busy else 0),
                "Throttles": float(2 if busy and minutes in (12, 13) else 0),
                "ConcurrentExecutions": float(r.randint(8, 30) if busy else r.randint(0, 1)),
            }.get(name, float(r.randint(0, 3)))
        if ns == "AWS/DynamoDB":
            if name == "SuccessfulRequestLatency":
                return [round(r.uniform(3, 9), 2) for _ in range(2)] + [round(r.uniform(12, 40), 2)]
            throttled = failures.count("dynamodb")
            return {
                "ConsumedReadCapacityUnits": float(width * r.randint(20, 90)),
                "ConsumedWriteCapacityUnits": float(width * r.randint(40, 70)),
                "ReadThrottleEvents": 0.0,
                "WriteThrottleEvents": float(3 * throttled),
                "ThrottledRequests": float(3 * throttled),
                "SystemErrors": float(failures.count("timeout") if dims.get("Operation") in (None, "PutItem") else 0),
            }.get(name, float(r.randint(0, 2)))
        if ns == "AWS/ApiGateway":
            if name in ("Latency", "IntegrationLatency"):
                extra = 0.0 if name == "IntegrationLatency" else 12.0
                values = [round(extra + r.uniform(60, 480), 1) for _ in range(3)]
                if "timeout" in failures:
                    values.append(29000.0 + extra)
                return values
            client_errors = sum(k in ("validation", "request") for k in failures)
            return {
                "Count": float(width * r.randint(45, 70)),
                "4xx": float(client_errors + r.randint(0, 2)),
                "5xx": float(len(failures) - client_errors),
            }.get(name, float(r.randint(0, 3)))
        if ns == "AWS/SQS":
            if dims.get("QueueName") == w.scope.get(w.dlq_key() or ""):
                arrivals = self._dlq_slots()
                waiting = sum(1 for m in arrivals if m >= minutes)
                return {
                    "ApproximateNumberOfMessagesVisible": float(waiting),
                    "ApproximateAgeOfOldestMessage": float(60 * (max(arrivals) - minutes) if waiting else 0),
                    "NumberOfMessagesSent": float(arrivals.count(minutes)),
                }.get(name, 0.0)
            return {
                "ApproximateNumberOfMessagesVisible": float(r.randint(0, 4)),
                "ApproximateAgeOfOldestMessage": float(r.randint(0, 20)),
                "NumberOfMessagesSent": float(width * r.randint(40, 60)),
            }.get(name, float(r.randint(0, 3)))
        if ns == "CloudWatchSynthetics":
            key = next((k for k, n in w.names("canary") if n == dims.get("CanaryName")), "")
            runs = dict(canary_runs(key))
            if minutes not in runs:
                return None
            return {
                "SuccessPercent": 100.0 if runs[minutes] else 0.0,
                "Failed": 0.0 if runs[minutes] else 1.0,
                "Duration": 1000.0 if runs[minutes] else 29100.0,
            }.get(name, 1.0)
        return float(r.randint(0, 3))

    def _dlq_slots(self) -> list[int]:
        w = self.world
        return [self.slot(r.start) for r in w.failed_invocations()]

    def seed_metrics(self) -> None:
        w = self.world
        cw = w.client("cloudwatch")
        top = w.now.replace(second=0, microsecond=0)
        by_namespace: dict[str, list[dict[str, Any]]] = {}
        for (ns, name, dims), unit in self._series().items():
            dim_dict = dict(dims)
            if ns == "CloudWatchSynthetics":
                key = next((k for k, n in w.names("canary") if n == dim_dict.get("CanaryName")), "")
                minutes_list = [m for m, _ in canary_runs(key)]
            else:
                minutes_list = self.slots()
            for minutes in minutes_list:
                value = self._value(ns, name, dim_dict, minutes)
                if value is None:
                    continue
                datum: dict[str, Any] = {
                    "MetricName": name,
                    "Dimensions": [{"Name": k, "Value": v} for k, v in dims],
                    "Timestamp": top - timedelta(minutes=minutes),
                }
                if isinstance(value, list):
                    datum["Values"] = value
                else:
                    datum["Value"] = value
                if unit:
                    datum["Unit"] = unit
                by_namespace.setdefault(ns, []).append(datum)
        for ns, data in by_namespace.items():
            for batch in chunks(data, 1000):
                cw.put_metric_data(Namespace=ns, MetricData=batch)

    # -- CloudWatch alarms and dashboards --------------------------------------------------

    def seed_alarms(self) -> None:
        w = self.world
        cw = w.client("cloudwatch")
        # The alarm export's definitions, with the ids moto gave (the API's) where they belong.
        kwargs = put_metric_alarm_kwargs(w.catalog, w.env.name, w.site_url, deployed=w.deployed)
        for kw in kwargs:
            cw.put_metric_alarm(**kw)
        names = {a.id: w.text(a.name) for a in w.catalog.alarms}
        alarming = [names[i] for i in ALARMING if i in names]
        if len(alarming) < 2:
            alarming += [kw["AlarmName"] for kw in kwargs if kw["AlarmName"] not in alarming][: 2 - len(alarming)]
        for name in alarming:
            kw = next(k for k in kwargs if k["AlarmName"] == name)
            cw.set_alarm_state(
                AlarmName=name,
                StateValue="ALARM",
                StateReason=(
                    f"Threshold Crossed: {kw['DatapointsToAlarm']} out of the last {kw['EvaluationPeriods']} "
                    f"datapoints {'was' if kw['DatapointsToAlarm'] == 1 else 'were'} "
                    f"{COMPARISON_WORDS[kw['ComparisonOperator']]} the threshold ({float(kw['Threshold'])})."
                ),
                StateReasonData=json.dumps({"version": "1.0", "queryDate": iso(w.now)}),
            )

    def seed_dashboards(self) -> None:
        w = self.world
        cw = w.client("cloudwatch")
        for _, dashboard in w.names("dashboard"):
            cw.put_dashboard(DashboardName=dashboard, DashboardBody=json.dumps(self._dashboard_body()))

    def _dashboard_body(self) -> dict[str, Any]:
        w = self.world
        widgets = []
        for n, alarm in enumerate(w.catalog.alarms):
            metrics = [alarm.metric] if alarm.metric else [q.metric for q in alarm.metrics if q.metric]
            lines = []
            for m in metrics:
                if m is None:
                    continue
                line: list[Any] = [m.namespace, m.name]
                for k, v in self.dimensions(m).items():
                    line += [k, v]
                line.append({"stat": m.extended_statistic or m.statistic, "period": m.period})
                lines.append(line)
            widgets.append(
                {
                    "type": "metric",
                    "x": (n % 2) * 12,
                    "y": (n // 2) * 6,
                    "width": 12,
                    "height": 6,
                    "properties": {
                        "title": alarm.title,
                        "region": w.env.region,
                        "metrics": lines,
                        "view": "timeSeries",
                        "annotations": {"alarms": [w.arn("cloudwatch", f"alarm:{w.text(alarm.name)}")]},
                    },
                }
            )
        lead = w.lead_handler()
        if lead:
            widgets.append(
                {
                    "type": "log",
                    "x": 0,
                    "y": (len(widgets) // 2 + 1) * 6,
                    "width": 24,
                    "height": 6,
                    "properties": {
                        "title": "Lead handler errors",
                        "region": w.env.region,
                        "query": f"SOURCE '/aws/lambda/{lead}' | fields @timestamp, @message "
                        "| filter @message like /ERROR/ | sort @timestamp desc | limit 20",
                    },
                }
            )
        return {"widgets": widgets}
