"""CloudWatch Logs: the lead handler's planned invocations and the log events that tell them."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from .base import WorldBase, _chunks, _iso_ms, _ms
from .story import _CLIENT_IPS, _ERRORS, _HTTP_STATUS, _INVOCATIONS, _NOISY_IP, HISTORY_MINUTES, LIVE_VERSION


class LogsMixin(WorldBase):
    """The request plan and the CloudWatch Logs step of `_World`."""

    # -- CloudWatch Logs -------------------------------------------------------------------

    def _plan_requests(self) -> list[dict[str, Any]]:
        """The lead handler's invocations of the last hour, shared by logs, traces and metrics."""
        plan = []
        streams = [f"[{LIVE_VERSION}]{self.hexid(32)}" for _ in range(3)]
        cold = set()
        for i, (ago, outcome) in enumerate(_INVOCATIONS):
            stream = 2 if ago < 1200 and i % 3 == 0 else i % 2
            request = outcome == "request"
            rid = self.sample("request-id") if request else self.request_id()
            start = self.ago(ago)
            duration = {
                "timeout": 30000.0,
                "dynamodb": 1800.0 + self.rng.uniform(0, 400),
                "ok": 120.0 + self.rng.uniform(0, 300),
            }.get(outcome, 40.0 + self.rng.uniform(0, 30))
            plan.append(
                {
                    "ago": ago,
                    "start": start,
                    "outcome": "validation" if request else outcome,
                    "kind": outcome,
                    "request_id": rid,
                    "trace_id": self.sample("trace-id")
                    if request
                    else f"1-{int(start.timestamp()):08x}-{self.hexid(24)}",
                    "segment_id": self.hexid(16),
                    "stream": streams[stream],
                    "cold": stream not in cold,
                    "duration": duration,
                    "lead": self.lead_id(10 + i),
                    "ip": _CLIENT_IPS[i % len(_CLIENT_IPS)],
                }
            )
            cold.add(stream)
        return plan

    def failed_requests(self) -> list[dict[str, Any]]:
        """The failed invocations whose messages wait in the dead-letter queue (the last three)."""
        return [r for r in self.requests if r["outcome"] != "ok"][-3:]

    def seed_logs(self) -> None:
        logs = self.client("logs")
        lambda_days = self.env.values.get("lambda_log_retention_days")
        api_days = self.env.values.get("api_log_retention_days")
        lead = self.lead_handler()
        groups: dict[str, tuple[Any, dict[str, list[tuple[datetime, str]]]]] = {}
        for _, function in self.names("lambda_function"):
            events = self._lead_events() if function == lead else self._quiet_function_events(function)
            groups[f"/aws/lambda/{function}"] = (lambda_days, events)
        for key, name in self.names("log_group"):
            events = self._access_log_events() if "api" in key or "api-gateway" in name else {}
            groups.setdefault(name, (api_days if "api" in key else lambda_days, events))
        for key, canary in self.names("canary"):
            groups[self.canary_group(canary)] = (lambda_days, self._canary_events(key, canary))
        for group, (days, streams) in groups.items():
            logs.create_log_group(logGroupName=group, tags=self.tags)
            if isinstance(days, int):
                logs.put_retention_policy(logGroupName=group, retentionInDays=days)
            for stream, events in streams.items():
                logs.create_log_stream(logGroupName=group, logStreamName=stream)
                ordered = sorted(events, key=lambda e: e[0])
                for batch in _chunks(ordered, 1000):
                    logs.put_log_events(
                        logGroupName=group,
                        logStreamName=stream,
                        logEvents=[{"timestamp": _ms(t), "message": m} for t, m in batch],
                    )

    def _stream_name(self, stream: str, t: datetime) -> str:
        return f"{t:%Y/%m/%d}/{stream}"

    def _lead_events(self) -> dict[str, list[tuple[datetime, str]]]:
        table = next((n for _, n in self.names("dynamodb_table")), "the table")
        first_start = {}
        for r in self.requests:
            first_start.setdefault(r["stream"], r["start"])
        out: dict[str, list[tuple[datetime, str]]] = {}
        for r in self.requests:
            name = self._stream_name(r["stream"], first_start[r["stream"]])
            events = out.setdefault(name, [])
            t, rid, outcome = r["start"], r["request_id"], r["outcome"]
            end = t + timedelta(milliseconds=r["duration"])

            def at(ms: float, _t: datetime = t) -> datetime:
                return _t + timedelta(milliseconds=ms)

            events.append((t, f"START RequestId: {rid} Version: {LIVE_VERSION}"))
            events.append((at(5), f"[INFO]\t{_iso_ms(at(5))}\t{rid}\tReceived lead {r['lead']} for funnel real-estate"))
            if outcome == "ok":
                events.append(
                    (
                        at(r["duration"] - 10),
                        f"[INFO]\t{_iso_ms(at(r['duration'] - 10))}\t{rid}\tStored lead {r['lead']} in {table}",
                    )
                )
            else:
                message = _ERRORS[r["kind"]].format(lead=r["lead"], table=table)
                when = at(r["duration"] - 20)
                events.append((when, f"[ERROR]\t{_iso_ms(when)}\t{rid}\t{message}"))
                if outcome == "timeout":
                    events.append((end, f"{_iso_ms(end)} {rid} Task timed out after 30.00 seconds"))
            events.append((end, f"END RequestId: {rid}"))
            billed = int(r["duration"]) + 1
            report = (
                f"REPORT RequestId: {rid}\tDuration: {r['duration']:.2f} ms\tBilled Duration: {billed} ms\t"
                f"Memory Size: 512 MB\tMax Memory Used: {84 + len(events) % 17} MB"
            )
            if r["cold"]:
                report += f"\tInit Duration: {380 + self.rng.uniform(0, 120):.2f} ms"
            if outcome == "timeout":
                report += "\tStatus: timeout"
            report += f"\t\nXRAY TraceId: {r['trace_id']}\tSegmentId: {r['segment_id']}\tSampled: true\t"
            events.append((end + timedelta(milliseconds=1), report))
        return out

    def _quiet_function_events(self, function: str) -> dict[str, list[tuple[datetime, str]]]:
        """A function that runs rarely and succeeds: a few invocations in the last hour."""
        stream = self._stream_name(f"[{LIVE_VERSION}]{self.hexid(32)}", self.ago(3000))
        events = []
        for n, ago in enumerate((3000, 1500, 240)):
            t, rid = self.ago(ago), self.request_id()
            duration = 180.0 + self.rng.uniform(0, 200)
            end = t + timedelta(milliseconds=duration)
            events += [
                (t, f"START RequestId: {rid} Version: {LIVE_VERSION}"),
                (t + timedelta(milliseconds=3), f"[INFO]\t{_iso_ms(t)}\t{rid}\t{function} started"),
                (end - timedelta(milliseconds=2), f"[INFO]\t{_iso_ms(end)}\t{rid}\tdone: nothing to do"),
                (end, f"END RequestId: {rid}"),
                (
                    end + timedelta(milliseconds=1),
                    f"REPORT RequestId: {rid}\tDuration: {duration:.2f} ms\tBilled Duration: {int(duration) + 1} ms\t"
                    f"Memory Size: 256 MB\tMax Memory Used: 71 MB"
                    + (f"\tInit Duration: {350 + self.rng.uniform(0, 100):.2f} ms" if n == 0 else ""),
                ),
            ]
        return {stream: events}

    def _access_log_events(self) -> dict[str, list[tuple[datetime, str]]]:
        """JSON access log lines: the lead submissions, the canary's health checks, a prober."""
        lines: list[tuple[datetime, dict[str, Any]]] = []
        for r in self.requests:
            status = _HTTP_STATUS[r["kind"]]
            entry = {
                "ip": r["ip"],
                "httpMethod": "POST",
                "routeKey": "POST /leads",
                "status": str(status),
                "responseLength": "27" if status == 200 else "35",
                "integrationLatency": str(int(r["duration"])),
                "integrationErrorMessage": "The Lambda function returned an error." if status >= 500 else "-",
            }
            lines.append((r["start"] + timedelta(milliseconds=r["duration"] + 15), entry))
        for key, _ in self.names("canary"):
            if "api" not in key:
                continue
            for minutes, passed in self.canary_runs(key):
                lines.append(
                    (
                        self.now - timedelta(minutes=minutes) + timedelta(seconds=1),
                        {
                            "ip": "54.240.196.186",
                            "httpMethod": "GET",
                            "routeKey": "GET /health",
                            "status": "200" if passed else "502",
                            "responseLength": "15" if passed else "35",
                            "integrationLatency": "38" if passed else "29000",
                            "integrationErrorMessage": "-" if passed else "The Lambda function returned an error.",
                        },
                    )
                )
        for ago, status, route in (
            (2400, 404, "$default"),
            (2395, 404, "$default"),
            (2390, 403, "$default"),
            (1200, 429, "POST /leads"),
            (1199, 429, "POST /leads"),
            (700, 404, "$default"),
        ):
            lines.append(
                (
                    self.ago(ago),
                    {
                        "ip": _NOISY_IP,
                        "httpMethod": "GET" if route == "$default" else "POST",
                        "routeKey": route,
                        "status": str(status),
                        "responseLength": "23",
                        "integrationLatency": "-",
                        "integrationErrorMessage": "-",
                    },
                )
            )
        stream = f"$default_{self.hexid(32)}"
        events = []
        for t, entry in lines:
            full = {
                "requestId": self._api_request_id(),
                "ip": entry.pop("ip"),
                "requestTime": t.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                **entry,
                "protocol": "HTTP/1.1",
            }
            events.append((t, json.dumps(full, separators=(",", ":"))))
        return {stream: events}

    def _api_request_id(self) -> str:
        return (
            "".join(
                self.rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") for _ in range(15)
            )
            + "="
        )

    def _canary_events(self, key: str, canary: str) -> dict[str, list[tuple[datetime, str]]]:
        api_host = self.env.values.get("api_host", "api.example.com")
        target = f"https://{api_host}/health" if "api" in key else f"https://{self._site_host()}/"
        stream = self._stream_name(f"[$LATEST]{self.hexid(32)}", self.now - timedelta(minutes=HISTORY_MINUTES))
        events = []
        for minutes, passed in self.canary_runs(key):
            t, rid = self.now - timedelta(minutes=minutes), self.request_id()

            def line(ms: int, level: str, text: str, _t: datetime = t, _rid: str = rid) -> tuple[datetime, str]:
                when = _t + timedelta(milliseconds=ms)
                return when, f"{_iso_ms(when)}\t{_rid}\t{level}\t{text}"

            events.append((t, f"START RequestId: {rid} Version: $LATEST"))
            events.append(line(20, "INFO", "Start Canary"))
            events.append(line(40, "INFO", f"Request: GET {target}"))
            if passed:
                events.append(line(900, "INFO", "Response: 200 OK"))
                events.append(line(950, "INFO", "Canary successful"))
            else:
                events.append(line(29000, "ERROR", "Response: 502 Bad Gateway"))
                events.append(line(29050, "ERROR", "Canary error: Error: Failed: 502 Bad Gateway"))
            duration = 1000.0 if passed else 29100.0
            end = t + timedelta(milliseconds=duration)
            events.append((end, f"END RequestId: {rid}"))
            events.append(
                (
                    end + timedelta(milliseconds=1),
                    f"REPORT RequestId: {rid}\tDuration: {duration:.2f} ms\tBilled Duration: {int(duration)} ms\t"
                    "Memory Size: 1024 MB\tMax Memory Used: 412 MB",
                )
            )
        return {stream: events}
