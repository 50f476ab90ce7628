"""CloudWatch Logs: the log events that tell the lead handler's invocations, the API's and the canaries' runs."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from .context import World, chunks, iso_ms, ms
from .story import ERRORS, HISTORY_MINUTES, HTTP_STATUS, LIVE_VERSION, NOISY_IP, canary_runs

Events = dict[str, list[tuple[datetime, str]]]  # log stream → (time, message) of its events


class Logs:
    """CloudWatch Logs."""

    def __init__(self, world: World) -> None:
        self.world = world

    def seed_logs(self) -> None:
        w = self.world
        logs = w.client("logs")
        lambda_days = w.env.values.get("lambda_log_retention_days")
        api_days = w.env.values.get("api_log_retention_days")
        lead = w.lead_handler()
        groups: dict[str, tuple[object, Events]] = {}
        for _, function in w.names("lambda_function"):
            events = self._lead_events() if function == lead else self._quiet_function_events(function)
            groups[f"/aws/lambda/{function}"] = (lambda_days, events)
        for key, name in w.names("log_group"):
            events = self._access_log_events() if "api" in key or "api-gateway" in name else {}
            groups.setdefault(name, (api_days if "api" in key else lambda_days, events))
        for key, canary in w.names("canary"):
            groups[w.canary_group(canary)] = (lambda_days, self._canary_events(key, canary))
        for group, (days, streams) in groups.items():
            logs.create_log_group(logGroupName=group, tags=w.tags)
            if isinstance(days, int):
                logs.put_retention_policy(logGroupName=group, retentionInDays=days)
            for stream, stream_events in streams.items():
                logs.create_log_stream(logGroupName=group, logStreamName=stream)
                ordered = sorted(stream_events, key=lambda e: e[0])
                for batch in chunks(ordered, 1000):
                    logs.put_log_events(
                        logGroupName=group,
                        logStreamName=stream,
                        logEvents=[{"timestamp": ms(t), "message": m} for t, m in batch],
                    )

    def _stream_name(self, stream: str, t: datetime) -> str:
        return f"{t:%Y/%m/%d}/{stream}"

    def _lead_events(self) -> Events:
        w = self.world
        table = next((n for _, n in w.names("dynamodb_table")), "the table")
        first_start: dict[str, datetime] = {}
        for r in w.invocations:
            first_start.setdefault(r.stream, r.start)
        out: Events = {}
        for r in w.invocations:
            name = self._stream_name(r.stream, first_start[r.stream])
            events = out.setdefault(name, [])
            t, rid, outcome = r.start, r.request_id, r.outcome
            end = t + timedelta(milliseconds=r.duration)

            def at(millis: float, _t: datetime = t) -> datetime:
                return _t + timedelta(milliseconds=millis)

            events.append((t, f"START RequestId: {rid} Version: {LIVE_VERSION}"))
            events.append((at(5), f"[INFO]\t{iso_ms(at(5))}\t{rid}\tReceived lead {r.lead} for funnel real-estate"))
            if outcome == "ok":
                events.append(
                    (
                        at(r.duration - 10),
                        f"[INFO]\t{iso_ms(at(r.duration - 10))}\t{rid}\tStored lead {r.lead} in {table}",
                    )
                )
            else:
                message = ERRORS[r.kind].format(lead=r.lead, table=table)
                when = at(r.duration - 20)
                events.append((when, f"[ERROR]\t{iso_ms(when)}\t{rid}\t{message}"))
                if outcome == "timeout":
                    events.append((end, f"{iso_ms(end)} {rid} Task timed out after 30.00 seconds"))
            events.append((end, f"END RequestId: {rid}"))
            billed = int(r.duration) + 1
            report = (
                f"REPORT RequestId: {rid}\tDuration: {r.duration:.2f} ms\tBilled Duration: {billed} ms\t"
                f"Memory Size: 512 MB\tMax Memory Used: {84 + len(events) % 17} MB"
            )
            if r.cold:
                report += f"\tInit Duration: {380 + w.rng.uniform(0, 120):.2f} ms"
            if outcome == "timeout":
                report += "\tStatus: timeout"
            report += f"\t\nXRAY TraceId: {r.trace_id}\tSegmentId: {r.segment_id}\tSampled: true\t"
            events.append((end + timedelta(milliseconds=1), report))
        return out

    def _quiet_function_events(self, function: str) -> Events:
        """A function that runs rarely and succeeds: a few invocations in the last hour."""
        w = self.world
        stream = self._stream_name(f"[{LIVE_VERSION}]{w.hexid(32)}", w.ago(3000))
        events = []
        for n, ago in enumerate((3000, 1500, 240)):
            t, rid = w.ago(ago), w.request_id()
            duration = 180.0 + w.rng.uniform(0, 200)
            end = t + timedelta(milliseconds=duration)
            events += [
                (t, f"START RequestId: {rid} Version: {LIVE_VERSION}"),
                (t + timedelta(milliseconds=3), f"[INFO]\t{iso_ms(t)}\t{rid}\t{function} started"),
                (end - timedelta(milliseconds=2), f"[INFO]\t{iso_ms(end)}\t{rid}\tdone: nothing to do"),
                (end, f"END RequestId: {rid}"),
                (
                    end + timedelta(milliseconds=1),
                    f"REPORT RequestId: {rid}\tDuration: {duration:.2f} ms\tBilled Duration: {int(duration) + 1} ms\t"
                    f"Memory Size: 256 MB\tMax Memory Used: 71 MB"
                    + (f"\tInit Duration: {350 + w.rng.uniform(0, 100):.2f} ms" if n == 0 else ""),
                ),
            ]
        return {stream: events}

    def _access_log_events(self) -> Events:
        """JSON access log lines: the lead submissions, the canary's health checks, a prober."""
        w = self.world
        lines: list[tuple[datetime, dict[str, Any]]] = []
        for r in w.invocations:
            status = HTTP_STATUS[r.kind]
            entry = {
                "ip": r.ip,
                "httpMethod": "POST",
                "routeKey": "POST /leads",
                "status": str(status),
                "responseLength": "27" if status == 200 else "35",
                "integrationLatency": str(int(r.duration)),
                "integrationErrorMessage": "The Lambda function returned an error." if status >= 500 else "-",
            }
            lines.append((r.start + timedelta(milliseconds=r.duration + 15), entry))
        for key, _ in w.names("canary"):
            if "api" not in key:
                continue
            for minutes, passed in canary_runs(key):
                lines.append(
                    (
                        w.now - timedelta(minutes=minutes) + timedelta(seconds=1),
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
                    w.ago(ago),
                    {
                        "ip": NOISY_IP,
                        "httpMethod": "GET" if route == "$default" else "POST",
                        "routeKey": route,
                        "status": str(status),
                        "responseLength": "23",
                        "integrationLatency": "-",
                        "integrationErrorMessage": "-",
                    },
                )
            )
        stream = f"$default_{w.hexid(32)}"
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
        w = self.world
        return (
            "".join(w.rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") for _ in range(15))
            + "="
        )

    def _canary_events(self, key: str, canary: str) -> Events:
        w = self.world
        api_host = w.env.values.get("api_host", "api.example.com")
        target = f"https://{api_host}/health" if "api" in key else f"https://{w.site_host()}/"
        stream = self._stream_name(f"[$LATEST]{w.hexid(32)}", w.now - timedelta(minutes=HISTORY_MINUTES))
        events = []
        for minutes, passed in canary_runs(key):
            t, rid = w.now - timedelta(minutes=minutes), w.request_id()

            def line(millis: int, level: str, text: str, _t: datetime = t, _rid: str = rid) -> tuple[datetime, str]:
                when = _t + timedelta(milliseconds=millis)
                return when, f"{iso_ms(when)}\t{_rid}\t{level}\t{text}"

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
