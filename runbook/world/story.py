"""The story every area tells alike: its times, versions, invocations, leads and errors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .context import World

HISTORY_MINUTES = 60
OPERATOR_USER = "oncall-engineer"
LIVE_ALIAS = "live"
LIVE_VERSION = "2"  # versions 1 and 2 exist: rolling `live` back to 1 is a real rollback
RESERVED_CONCURRENCY = 100
# Alarms put in ALARM (the others stay OK), when the catalog has them.
ALARMING = ("lambda-errors", "sqs-dlq")
CANARY_PERIOD_MINUTES = 5
DENSE_MINUTES = 30  # metrics: one point a minute this far back, one per five minutes before

# ------------------------------------------------------------------ the story's fixed parts

# The lead handler's invocations: (seconds ago, outcome). Two containers serve them; a third
# starts late (a cold start in the last quarter of an hour). The `request` outcome is the
# failing invocation whose request id and trace id are the operator-input samples.
INVOCATIONS: tuple[tuple[int, str], ...] = (
    (3340, "ok"),
    (3150, "ok"),
    (2810, "validation"),
    (2570, "ok"),
    (2290, "dynamodb"),
    (2010, "ok"),
    (1730, "timeout"),
    (1420, "ok"),
    (1090, "ok"),
    (800, "dynamodb"),
    (610, "ok"),
    (285, "request"),
    (150, "ok"),
    (45, "ok"),
)
ERRORS = {
    "validation": "ValidationError: phone is required (lead {lead})",
    "request": "ValidationError: email is not a valid address (lead {lead})",
    "dynamodb": "DynamoDBServiceException: ProvisionedThroughputExceededException: The level of "
    "configured provisioned throughput for the table {table} was exceeded",
    "timeout": "TimeoutError: PutItem on {table} did not answer within 29 seconds",
}
HTTP_STATUS = {"ok": 200, "validation": 400, "request": 400, "dynamodb": 500, "timeout": 503}
CLIENT_IPS = ("203.0.113.10", "203.0.113.24", "203.0.113.57", "198.51.100.7")
NOISY_IP = "198.51.100.23"  # the one that probes the API: the 4xx "attack pattern"
LEADS = (  # (lead id offset from the sample, minutes ago, name, status)
    (0, 4, "Alex Morgan", "new"),
    (1, 17, "Sam Lee", "new"),
    (2, 46, "Jordan Diaz", "contacted"),
    (3, 130, "Riley Chen", "contacted"),
    (4, 420, "Casey Patel", "qualified"),
    (5, 1150, "Taylor Brooks", "closed"),
)

COMPARISON_WORDS = {
    "GreaterThanThreshold": "greater than",
    "GreaterThanOrEqualToThreshold": "greater than or equal to",
    "LessThanThreshold": "less than",
    "LessThanOrEqualToThreshold": "less than or equal to",
}
SENDERS = (("Jamie Rivera", "jamie.rivera"), ("Morgan Blake", "morgan.blake"), ("Avery Kim", "avery.kim"))
# Units and value shapes of the metrics the world publishes, per (namespace, name).
UNITS = {
    "Duration": "Milliseconds",
    "Latency": "Milliseconds",
    "IntegrationLatency": "Milliseconds",
    "SuccessfulRequestLatency": "Milliseconds",
    "ApproximateAgeOfOldestMessage": "Seconds",
    "SuccessPercent": "Percent",
}


# ------------------------------------------------------------------ the planned parts


@dataclass(frozen=True)
class Invocation:
    """One of the lead handler's invocations of the last hour (logs, traces and metrics tell it)."""

    start: datetime
    outcome: str  # ok, validation, dynamodb, timeout (the `request` kind is a validation failure)
    kind: str  # the entry of INVOCATIONS: outcome, or `request`
    request_id: str
    trace_id: str
    segment_id: str
    stream: str
    cold: bool
    duration: float  # milliseconds
    lead: str
    ip: str


def plan_invocations(world: World) -> list[Invocation]:
    """The lead handler's invocations of the last hour, shared by logs, traces and metrics."""
    plan = []
    streams = [f"[{LIVE_VERSION}]{world.hexid(32)}" for _ in range(3)]
    cold = set()
    for i, (ago, outcome) in enumerate(INVOCATIONS):
        stream = 2 if ago < 1200 and i % 3 == 0 else i % 2
        request = outcome == "request"
        rid = world.sample("request-id") if request else world.request_id()
        start = world.ago(ago)
        duration = {
            "timeout": 30000.0,
            "dynamodb": 1800.0 + world.rng.uniform(0, 400),
            "ok": 120.0 + world.rng.uniform(0, 300),
        }.get(outcome, 40.0 + world.rng.uniform(0, 30))
        plan.append(
            Invocation(
                start=start,
                outcome="validation" if request else outcome,
                kind=outcome,
                request_id=rid,
                trace_id=world.sample("trace-id") if request else f"1-{int(start.timestamp()):08x}-{world.hexid(24)}",
                segment_id=world.hexid(16),
                stream=streams[stream],
                cold=stream not in cold,
                duration=duration,
                lead=world.lead_id(10 + i),
                ip=CLIENT_IPS[i % len(CLIENT_IPS)],
            )
        )
        cold.add(stream)
    return plan


def canary_runs(key: str) -> list[tuple[int, bool]]:
    """(minutes ago, passed) of every run of canary `key` in the last hour; one failure 38 minutes ago."""
    runs = []
    for minutes in range(HISTORY_MINUTES - 2, 0, -1):
        if minutes % CANARY_PERIOD_MINUTES == 3:
            runs.append((minutes, not (minutes == 38 and "api" in key)))
    return runs
