"""The story every area tells alike: its times, versions, invocations, leads and errors."""

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
_INVOCATIONS: tuple[tuple[int, str], ...] = (
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
_ERRORS = {
    "validation": "ValidationError: phone is required (lead {lead})",
    "request": "ValidationError: email is not a valid address (lead {lead})",
    "dynamodb": "DynamoDBServiceException: ProvisionedThroughputExceededException: The level of "
    "configured provisioned throughput for the table {table} was exceeded",
    "timeout": "TimeoutError: PutItem on {table} did not answer within 29 seconds",
}
_HTTP_STATUS = {"ok": 200, "validation": 400, "request": 400, "dynamodb": 500, "timeout": 503}
_CLIENT_IPS = ("203.0.113.10", "203.0.113.24", "203.0.113.57", "198.51.100.7")
_NOISY_IP = "198.51.100.23"  # the one that probes the API: the 4xx "attack pattern"
_LEADS = (  # (lead id offset from the sample, minutes ago, name, status)
    (0, 4, "Alex Morgan", "new"),
    (1, 17, "Sam Lee", "new"),
    (2, 46, "Jordan Diaz", "contacted"),
    (3, 130, "Riley Chen", "contacted"),
    (4, 420, "Casey Patel", "qualified"),
    (5, 1150, "Taylor Brooks", "closed"),
)

_COMPARISON_WORDS = {
    "GreaterThanThreshold": "greater than",
    "GreaterThanOrEqualToThreshold": "greater than or equal to",
    "LessThanThreshold": "less than",
    "LessThanOrEqualToThreshold": "less than or equal to",
}
_SENDERS = (("Jamie Rivera", "jamie.rivera"), ("Morgan Blake", "morgan.blake"), ("Avery Kim", "avery.kim"))
# Units and value shapes of the metrics the world publishes, per (namespace, name).
_UNITS = {
    "Duration": "Milliseconds",
    "Latency": "Milliseconds",
    "IntegrationLatency": "Milliseconds",
    "SuccessfulRequestLatency": "Milliseconds",
    "ApproximateAgeOfOldestMessage": "Seconds",
    "SuccessPercent": "Percent",
}
