"""The gate's test world: each environment of the catalog seeded into its own moto account.

Everything comes from the Catalog (inventory, operator input samples, alarms, environment
values), so a renamed resource or a new alarm reaches the world without a change here. The
world is a story told the same way everywhere: over the last hour the lead handler served
leads, some failed (ValidationError, DynamoDB, a timeout), the failed ones sit in the
dead-letter queue, the API logged 4xx and 5xx, and the metrics, traces and alarms agree.

Times are relative to the moment of seeding: metrics cover the last hour (a point a minute
for the last half hour, every five minutes before, up to a minute ago), log events and traces
the last hour (up to 45 seconds ago). Alarms come from the alarm export, so the world holds
exactly the alarms an environment would get.

Seeding one environment takes ~0.4 s on a warm moto server (scripts/bench_world.py); the first
seeding in a process pays ~2-5 s more for moto importing its service modules.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import random
import re
import threading
import time
import urllib.request
import uuid
import zipfile
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import botocore.loaders
import botocore.session
from botocore.config import Config

from . import placeholders
from .export import put_metric_alarm_kwargs, site_url
from .load import Catalog, load_cached
from .model import Environment, Metric

ACCOUNT_HEADER = "x-moto-account-id"
HISTORY_MINUTES = 60
OPERATOR_USER = "oncall-engineer"
LIVE_ALIAS = "live"
LIVE_VERSION = "2"  # versions 1 and 2 exist: rolling `live` back to 1 is a real rollback
RESERVED_CONCURRENCY = 100
# Alarms put in ALARM (the others stay OK), when the catalog has them.
ALARMING = ("lambda-errors", "sqs-dlq")
CANARY_PERIOD_MINUTES = 5
DENSE_MINUTES = 30  # metrics: one point a minute this far back, one per five minutes before
SITE_URL_FALLBACK = "https://runbook.invalid/"
# Set to a list to collect (step, start s, end s) of every seeding step (scripts/bench_world.py).
TRACE_STEPS: list[tuple[str, float, float]] | None = None

# moto answers ~1.6 times as many requests with 2-4 clients in flight as with one.
SEED_THREADS = int(os.environ.get("RUNBOOK_WORLD_THREADS", "3"))

_DUMMY = "testing"
_CONFIG = Config(
    retries={"max_attempts": 1, "mode": "standard"},  # a moto "not implemented" is not retried
    connect_timeout=5,
    read_timeout=60,
    proxies={},
    # The world's requests are generated; moto answers a malformed one anyway. Validating
    # the ~1,500 metric data points alone cost a tenth of a second.
    parameter_validation=False,
)
_LOCK = threading.Lock()
_LOADER: botocore.loaders.Loader | None = None
# Clients per (endpoint, account, region, service): the gate reseeds after every reset, and
# creating a client costs ~10 ms even with the service model cached.
_CLIENTS: dict[tuple[str, str, str, str], Any] = {}
_SESSIONS: dict[tuple[str, str, str], boto3.Session] = {}

LAMBDA_TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)


# ------------------------------------------------------------------ entry points


def seed(endpoint_url: str, data_root: str, env: str) -> dict:
    """Create env's world in its own moto account; return {"env", "account", "region",
    "access_key_id", "secret_access_key"}: an access key moto issued inside that account.

    Meant for a fresh (or reset) moto server: seeding the same environment twice fails on
    the first resource that already exists.
    """
    catalog = load_cached(data_root)
    use_lambda_without_docker(endpoint_url)
    return _World(endpoint_url, catalog, env, _site_url(Path(data_root))).seed()


def seed_all(endpoint_url: str, data_root: str, envs: list[str] | None = None) -> list[dict]:
    """`seed` every environment of the catalog (or the named ones), in catalog order."""
    catalog = load_cached(data_root)
    names = envs if envs is not None else [e.name for e in catalog.environments]
    return [seed(endpoint_url, data_root, name) for name in names]


def use_lambda_without_docker(endpoint_url: str) -> None:
    """Switch moto's Lambda to its Docker-less backend unless it already is.

    Switching drops the functions of the other backend, so it must happen before the first
    function; asking first keeps an already-seeded environment's functions.
    """
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(endpoint_url + "/moto-api/config", timeout=10) as response:
        current = json.loads(response.read() or b"{}")
    if current.get("lambda", {}).get("use_docker") is False:
        return
    request = urllib.request.Request(
        endpoint_url + "/moto-api/config",
        data=json.dumps({"lambda": {"use_docker": False}}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with opener.open(request, timeout=10) as response:
        response.read()


def _site_url(data_root: Path) -> str:
    mkdocs_yml = data_root.resolve().parent / "mkdocs.yml"
    if not mkdocs_yml.exists():
        return SITE_URL_FALLBACK  # a data folder outside a site (tests): links are not followed
    return site_url(mkdocs_yml)


def _client(endpoint_url: str, account: str, region: str, service: str) -> Any:
    """A boto3 client whose every request lands in `account` (moto's account header)."""
    key = (endpoint_url, account, region, service)
    with _LOCK:
        client = _CLIENTS.get(key)
        if client is not None:
            return client
        global _LOADER
        if _LOADER is None:
            _LOADER = botocore.loaders.create_loader()  # service models parsed once per process
        session = _SESSIONS.get(key[:3])
        if session is None:
            bc = botocore.session.Session()
            bc.register_component("data_loader", _LOADER)
            session = boto3.Session(
                botocore_session=bc, aws_access_key_id=_DUMMY, aws_secret_access_key=_DUMMY, region_name=region
            )
            _SESSIONS[key[:3]] = session
        client = session.client(service, endpoint_url=endpoint_url, config=_CONFIG)

        def pin_account(request: Any, **_: Any) -> None:
            request.headers[ACCOUNT_HEADER] = account

        client.meta.events.register("before-send", pin_account)
        _CLIENTS[key] = client
        return client


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


def _tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def _zip(source: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("index.py", source)
    return buf.getvalue()


def _handler_source(function: str, release: str) -> str:
    return (
        f'"""{function} ({release}): the gate\'s stand-in, answers what it was given."""\n\n'
        f'RELEASE = "{release}"\n\n\n'
        "def handler(event, context):\n"
        '    return {"statusCode": 200, "release": RELEASE, "event": event}\n'
    )


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def _iso_ms(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


# ------------------------------------------------------------------ one environment


class _World:
    def __init__(self, endpoint_url: str, catalog: Catalog, env: str, site_url: str) -> None:
        self.endpoint_url = endpoint_url.rstrip("/")
        self.catalog = catalog
        self.env: Environment = catalog.env(env)
        self.scope = catalog.scope(env)
        self.site_url = site_url
        self.now = datetime.now(UTC)
        # Values vary per environment but not per run (a failure reproduces): each step draws
        # from its own generator, whatever the order the threads run the steps in.
        self._main_rng = random.Random(f"kanjona-world/{env}")
        self._local = threading.local()
        # What seeding learns on the way (ids moto picks).
        self.api_id = ""
        # Deploy-time attributes ({api.id}, {website_cdn.id}) → their values in this world.
        self.deployed: dict[str, str] = {}
        self.api_domain_target: tuple[str, str] | None = None
        self.distribution: dict[str, str] = {}
        self.requests = self._plan_requests()

    # -- plumbing --------------------------------------------------------------------------

    def client(self, service: str) -> Any:
        return _client(self.endpoint_url, self.env.account, self.env.region, service)

    @property
    def rng(self) -> random.Random:
        return getattr(self._local, "rng", None) or self._main_rng

    def names(self, rtype: str) -> list[tuple[str, str]]:
        """(inventory key, resolved name) of every resource of one type, in inventory order."""
        return [(key, self.scope[key]) for key, res in self.catalog.resources.items() if res.type == rtype]

    def primary(self, rtype: str, hint: str) -> str | None:
        """The inventory key of the resource of `rtype` the story centres on (key holds `hint`)."""
        keys = [k for k, _ in self.names(rtype)]
        return next((k for k in keys if hint in k), keys[0] if keys else None)

    def text(self, pattern: str) -> str:
        """A pattern filled in: environment values, deploy-time ids, operator-input samples."""
        return placeholders.substitute(pattern, self.scope, lambda name: self.deployed.get(name) or self.sample(name))

    def sample(self, name: str) -> str:
        entry = self.catalog.inputs.get(name)
        return entry.sample if entry is not None else f"<{name}>"

    def hexid(self, n: int) -> str:
        return "".join(self.rng.choice("0123456789abcdef") for _ in range(n))

    def request_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def ago(self, seconds: float) -> datetime:
        return self.now - timedelta(seconds=seconds)

    @functools.cached_property
    def tags(self) -> dict[str, str]:
        return {"project": self.prefix.split("-")[0], "env": self.env.name, "managed-by": "terraform"}

    @functools.cached_property
    def prefix(self) -> str:
        """What the inventory's names share in this environment (kanjona-dev): names the extras
        the inventory does not list (roles, the shared policy)."""
        names = [re.split(r"[-/]", self.scope[k]) for k in self.catalog.resources if not self.scope[k].startswith("/")]
        common: list[str] = []
        for parts in zip(*names, strict=False):
            if len(set(parts)) != 1:
                break
            common.append(parts[0])
        return "-".join(common) or self.env.name

    @property
    def ops_email(self) -> str:
        emails = [c.value for c in self.catalog.escalation.contacts if re.fullmatch(r"[^@\s]+@[^@\s]+", c.value)]
        return emails[0] if emails else "oncall@example.com"

    def arn(self, service: str, resource: str, region: bool = True) -> str:
        return f"arn:aws:{service}:{self.env.region if region else ''}:{self.env.account}:{resource}"

    # -- the whole world -------------------------------------------------------------------

    # Steps and the steps they need done first (an id moto picks, a bucket to write into).
    # Listed longest chain first: steps start in this order when their needs are met.
    STEPS: dict[str, tuple[str, ...]] = {
        "api": (),
        "cdn": (),
        "queues": (),
        "logs": (),
        "metrics": ("api", "cdn"),
        "alarms": ("api", "cdn"),
        "functions": ("queues",),
        "buckets": (),
        "canaries": ("buckets",),
        "identity": (),
        "tables": (),
        "website_objects": ("buckets", "cdn"),
        "dns": ("api", "cdn"),
        "topics": (),
        "secrets": (),
        "traces": (),
        "dashboards": ("api", "cdn"),
    }

    def seed(self) -> dict:
        self._started = time.perf_counter()
        results = self._run_steps()
        return {
            "env": self.env.name,
            "account": self.env.account,
            "region": self.env.region,
            **results["identity"],
        }

    def _run_step(self, name: str) -> Any:
        self._local.rng = random.Random(f"kanjona-world/{self.env.name}/{name}")
        start = time.perf_counter()
        try:
            return getattr(self, f"seed_{name}")()
        finally:
            self._local.rng = None
            if TRACE_STEPS is not None:
                TRACE_STEPS.append((name, start - self._started, time.perf_counter() - self._started))

    def _run_steps(self) -> dict[str, Any]:
        """Every step once, each as soon as the steps it needs are done, a few at a time."""
        done: dict[str, Any] = {}
        waiting = dict(self.STEPS)
        running: dict[Future[Any], str] = {}
        with ThreadPoolExecutor(SEED_THREADS, thread_name_prefix=f"world-{self.env.name}") as pool:
            while waiting or running:
                for name, needs in list(waiting.items()):
                    if len(running) < SEED_THREADS and all(n in done for n in needs):
                        running[pool.submit(self._run_step, name)] = name
                        del waiting[name]
                if not running:
                    raise RuntimeError(f"seeding steps wait for each other: {sorted(waiting)}")
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    name = running.pop(future)
                    try:
                        done[name] = future.result()
                    except BaseException as exc:
                        for other in running:
                            other.cancel()
                        raise RuntimeError(f"seeding {self.env.name}: step '{name}' failed: {exc}") from exc
        return done

    # -- identity ----------------------------------------------------------------------------

    def seed_identity(self) -> dict[str, str]:
        """The operator's IAM user and key: moto maps a key it issued to the key's account."""
        iam = self.client("iam")
        iam.create_user(UserName=OPERATOR_USER, Tags=_tag_list(self.tags))
        key = iam.create_access_key(UserName=OPERATOR_USER)["AccessKey"]
        return {"access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"]}

    def role(self, name: str, statements: list[dict[str, Any]], managed: tuple[str, ...] = ()) -> str:
        """A role Lambda assumes: the shared managed policies attached, its resource access inline."""
        iam = self.client("iam")
        role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=LAMBDA_TRUST, Tags=_tag_list(self.tags))
        for policy_arn in managed:
            iam.attach_role_policy(RoleName=name, PolicyArn=policy_arn)
        if statements:
            iam.put_role_policy(
                RoleName=name,
                PolicyName=f"{name}-policy",
                PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}),
            )
        return role["Role"]["Arn"]

    # -- SNS -------------------------------------------------------------------------------

    def seed_topics(self) -> None:
        sns = self.client("sns")
        topics = dict.fromkeys([*self.env.alarm_topics.values(), *(n for _, n in self.names("sns_topic"))])
        for topic in topics:
            arn = sns.create_topic(Name=topic, Tags=_tag_list(self.tags))["TopicArn"]
            sns.subscribe(TopicArn=arn, Protocol="email", Endpoint=self.ops_email)

    # -- S3 --------------------------------------------------------------------------------

    def seed_buckets(self) -> None:
        s3 = self.client("s3")
        for _, bucket in self.names("s3_bucket"):
            kwargs: dict[str, Any] = {"Bucket": bucket}
            if self.env.region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.env.region}
            s3.create_bucket(**kwargs)
            s3.put_public_access_block(
                Bucket=bucket,
                PublicAccessBlockConfiguration={
                    "BlockPublicAcls": True,
                    "IgnorePublicAcls": True,
                    "BlockPublicPolicy": True,
                    "RestrictPublicBuckets": True,
                },
            )

    def website_bucket(self) -> str | None:
        key = self.primary("s3_bucket", "website")
        return self.scope[key] if key else None

    def artifacts_bucket(self) -> str | None:
        keys = [k for k, _ in self.names("s3_bucket") if "canary" in k or "artifact" in k]
        return self.scope[keys[0]] if keys else None

    def seed_website_objects(self) -> None:
        """The site's files and a bucket policy that lets the distribution (only) read them."""
        bucket = self.website_bucket()
        if bucket is None:
            return
        s3 = self.client("s3")
        files = {
            "index.html": ("text/html", "<!doctype html><title>Kanjona</title><h1>Find your next home</h1>\n"),
            "error.html": ("text/html", "<!doctype html><title>Kanjona</title><h1>Page not found</h1>\n"),
            "assets/app.js": ("application/javascript", "document.title = 'Kanjona';\n"),
        }
        for key, (ctype, body) in files.items():
            s3.put_object(Bucket=bucket, Key=key, Body=body.encode(), ContentType=ctype)
        statement: dict[str, Any] = {
            "Sid": "AllowCloudFrontRead",
            "Effect": "Allow",
            "Principal": {"Service": "cloudfront.amazonaws.com"},
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{bucket}/*",
        }
        if self.distribution:
            statement["Condition"] = {"StringEquals": {"AWS:SourceArn": self.distribution["arn"]}}
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [statement]}))

    # -- SQS -------------------------------------------------------------------------------

    def dlq_key(self) -> str | None:
        keys = [k for k, _ in self.names("sqs_queue")]
        return next((k for k in keys if "dlq" in k or "dead" in k), None)

    def seed_queues(self) -> None:
        sqs = self.client("sqs")
        dlq = self.dlq_key()
        if dlq is not None:
            # Inspecting a DLQ must not hide its messages from the next look: the runbook's
            # receive-message uses --visibility-timeout 0, the queue's default matches it.
            url = sqs.create_queue(
                QueueName=self.scope[dlq],
                Attributes={"MessageRetentionPeriod": str(14 * 86400), "VisibilityTimeout": "0"},
                tags=self.tags,
            )["QueueUrl"]
            sqs.send_message_batch(QueueUrl=url, Entries=self._dlq_messages())
        for key, name in self.names("sqs_queue"):
            if key == dlq:
                continue
            attributes = {"VisibilityTimeout": "180", "MessageRetentionPeriod": str(4 * 86400)}
            if dlq is not None:
                attributes["RedrivePolicy"] = json.dumps(
                    {"deadLetterTargetArn": self.scope[f"{dlq}.arn"], "maxReceiveCount": 3}
                )
            sqs.create_queue(QueueName=name, Attributes=attributes, tags=self.tags)

    def _dlq_messages(self) -> list[dict[str, Any]]:
        """The last three leads whose processing failed, as the API queued them."""
        entries = []
        for i, r in enumerate(self.failed_requests()):
            outcome = r["kind"]
            name, user = _SENDERS[i % len(_SENDERS)]
            body: dict[str, Any] = {
                "leadId": r["lead"],
                "funnelId": "real-estate",
                "name": name,
                "email": f"{user}@example.com",
                "phone": f"+1-555-01{50 + i}",
                "message": "Interested in the 3-bedroom listing",
                "submittedAt": _iso(r["start"]),
            }
            if outcome in ("validation", "request"):
                body["email"] = f"{user}(at)example"  # what the ValidationError was about
            entries.append(
                {
                    "Id": f"m{i}",
                    "MessageBody": json.dumps(body),
                    "MessageAttributes": {
                        "source": {"DataType": "String", "StringValue": "api"},
                        "errorType": {"DataType": "String", "StringValue": _ERRORS[outcome].split(":")[0]},
                    },
                }
            )
        return entries

    # -- DynamoDB --------------------------------------------------------------------------

    def lead_id(self, offset: int = 0) -> str:
        sample = self.sample("lead-id")
        return str(int(sample) + offset) if sample.isdigit() else f"{sample}-{offset}" if offset else sample

    def seed_tables(self) -> None:
        ddb = self.client("dynamodb")
        for _, table in self.names("dynamodb_table"):
            ddb.create_table(
                TableName=table,
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                AttributeDefinitions=[
                    {"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk", "funnelId", "createdAt")
                ],
                BillingMode="PAY_PER_REQUEST",
                GlobalSecondaryIndexes=[
                    {
                        "IndexName": "funnel-createdAt-index",
                        "KeySchema": [
                            {"AttributeName": "funnelId", "KeyType": "HASH"},
                            {"AttributeName": "createdAt", "KeyType": "RANGE"},
                        ],
                        "Projection": {"ProjectionType": "ALL"},
                    }
                ],
                Tags=_tag_list(self.tags),
            )
            ddb.update_continuous_backups(
                TableName=table, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
            )
            for batch in _chunks(self._lead_items(), 25):
                ddb.batch_write_item(RequestItems={table: [{"PutRequest": {"Item": item}} for item in batch]})

    def _lead_items(self) -> list[dict[str, Any]]:
        items = []
        for offset, minutes, name, status in _LEADS:
            lead = self.lead_id(offset)
            created = _iso(self.now - timedelta(minutes=minutes))
            first = name.split()[0].lower()
            items.append(
                {
                    "pk": {"S": f"LEAD#{lead}"},
                    "sk": {"S": f"LEAD#{lead}"},
                    "leadId": {"S": lead},
                    "funnelId": {"S": "real-estate"},
                    "name": {"S": name},
                    "email": {"S": f"{first}@example.com"},
                    "phone": {"S": f"+1-555-01{offset:02d}"},
                    "status": {"S": status},
                    "source": {"S": "website"},
                    "createdAt": {"S": created},
                    "updatedAt": {"S": created},
                }
            )
            # The lead's history lives in its item collection (same pk).
            for n, event in enumerate(("SUBMITTED", "NOTIFIED")):
                at = _iso(self.now - timedelta(minutes=minutes) + timedelta(seconds=2 * n))
                items.append(
                    {
                        "pk": {"S": f"LEAD#{lead}"},
                        "sk": {"S": f"EVENT#{at}#{event}"},
                        "type": {"S": event},
                        "createdAt": {"S": at},
                    }
                )
        return items

    # -- Secrets Manager -------------------------------------------------------------------

    def seed_secrets(self) -> None:
        sm = self.client("secretsmanager")
        for key, name in self.names("secret"):
            value = {
                "accountSid": "AC" + hashlib.sha256(f"{self.env.account}/{name}/sid".encode()).hexdigest()[:32],
                "authToken": hashlib.sha256(f"{self.env.account}/{name}/token".encode()).hexdigest()[:32],
                "fromNumber": "+15555550100",
            }
            sm.create_secret(
                Name=name,
                Description=self.catalog.resources[key].description or name,
                SecretString=json.dumps(value),
                Tags=_tag_list(self.tags),
            )

    # -- Lambda ----------------------------------------------------------------------------

    def lead_handler(self) -> str | None:
        key = self.primary("lambda_function", "lead")
        return self.scope[key] if key else None

    def function_arn(self, function: str) -> str:
        return self.arn("lambda", f"function:{function}")

    def _function_statements(self, key: str) -> list[dict[str, Any]]:
        statements: list[dict[str, Any]] = []
        tables = [self.scope[f"{k}.arn"] for k, _ in self.names("dynamodb_table")]
        if tables and "replay" not in key:
            statements.append(
                {
                    "Effect": "Allow",
                    "Action": ["dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:Query"],
                    "Resource": tables + [f"{t}/index/*" for t in tables],
                }
            )
        queues = [self.scope[f"{k}.arn"] for k, _ in self.names("sqs_queue")]
        if queues:
            statements.append(
                {
                    "Effect": "Allow",
                    "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:SendMessage", "sqs:GetQueueAttributes"],
                    "Resource": queues,
                }
            )
        secrets = [self.arn("secretsmanager", f"secret:{n}-*") for _, n in self.names("secret")]
        if secrets and "replay" not in key:
            statements.append({"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": secrets})
        return statements

    def _function_environment(self) -> dict[str, str]:
        variables = {"ENV": self.env.name, "LOG_LEVEL": "INFO"}
        for key, name in self.names("dynamodb_table"):
            variables[f"{key.upper()}_NAME"] = name
        for key, _ in self.names("sqs_queue"):
            variables[f"{key.upper()}_URL"] = self.scope[f"{key}.url"]
        for key, name in self.names("secret"):
            variables[f"{key.upper()}_ID"] = name
        return variables

    def seed_functions(self) -> None:
        lam = self.client("lambda")
        # What AWSLambdaBasicExecutionRole + AWSXRayDaemonWriteAccess grant (moto's server does
        # not load AWS managed policies by default): one customer managed policy.
        basic = self.client("iam").create_policy(
            PolicyName=f"{self.prefix}-lambda-basic-execution",
            Description="Logs and X-Ray for the platform's Lambda functions",
            PolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                            "Resource": "*",
                        },
                        {
                            "Effect": "Allow",
                            "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
                            "Resource": "*",
                        },
                    ],
                }
            ),
        )["Policy"]["Arn"]
        lead = self.lead_handler()
        for key, function in self.names("lambda_function"):
            role = self.role(f"{function}-role", self._function_statements(key), managed=(basic,))
            is_lead = function == lead
            lam.create_function(
                FunctionName=function,
                Runtime="python3.12",
                Role=role,
                Handler="index.handler",
                Code={"ZipFile": _zip(_handler_source(function, "1.4.0"))},
                Description=self.catalog.resources[key].description,
                Timeout=30 if is_lead else 60,
                MemorySize=512 if is_lead else 256,
                TracingConfig={"Mode": "Active"},
                Environment={"Variables": self._function_environment()},
                Tags=self.tags,
            )
            lam.publish_version(FunctionName=function, Description="release 1.4.0")
            # A version is published only when the code changed: deploy the next release.
            lam.update_function_code(FunctionName=function, ZipFile=_zip(_handler_source(function, "1.5.0")))
            lam.publish_version(FunctionName=function, Description="release 1.5.0")
            lam.create_alias(
                FunctionName=function, Name=LIVE_ALIAS, FunctionVersion=LIVE_VERSION, Description="serves traffic"
            )
            if is_lead:
                lam.put_function_concurrency(FunctionName=function, ReservedConcurrentExecutions=RESERVED_CONCURRENCY)
                main_queues = [k for k, _ in self.names("sqs_queue") if k != self.dlq_key()]
                for qkey in main_queues[:1]:
                    lam.create_event_source_mapping(
                        EventSourceArn=self.scope[f"{qkey}.arn"],
                        FunctionName=f"{function}:{LIVE_ALIAS}",
                        BatchSize=10,
                        Enabled=True,
                    )

    # -- API Gateway v2 --------------------------------------------------------------------

    def seed_api(self) -> None:
        apis = self.names("http_api")
        if not apis:
            return
        gw = self.client("apigatewayv2")
        lead = self.lead_handler()
        access_logs = self.names("log_group")
        log_arn = next(
            (self.scope[f"{k}.arn"] for k, n in access_logs if "api" in k or "api-gateway" in n),
            access_logs[0][0] if access_logs else None,
        )
        for i, (key, name) in enumerate(apis):
            api = gw.create_api(
                Name=name,
                ProtocolType="HTTP",
                Description=self.catalog.resources[key].description,
                CorsConfiguration={
                    "AllowOrigins": [f"https://{self._site_host()}"],
                    "AllowMethods": ["GET", "POST", "OPTIONS"],
                    "AllowHeaders": ["content-type", "x-amzn-trace-id"],
                    "MaxAge": 3600,
                },
                Tags=self.tags,
            )
            if i == 0:
                self.api_id = api["ApiId"]
            self.deployed[f"{key}.id"] = api["ApiId"]
            routes = ("POST /leads", "GET /health")
            if lead is not None:
                integration = gw.create_integration(
                    ApiId=api["ApiId"],
                    IntegrationType="AWS_PROXY",
                    IntegrationMethod="POST",
                    IntegrationUri=f"{self.function_arn(lead)}:{LIVE_ALIAS}",
                    PayloadFormatVersion="2.0",
                    TimeoutInMillis=29000,
                    Description="lead handler (live alias)",
                )
                for route in routes:
                    gw.create_route(
                        ApiId=api["ApiId"], RouteKey=route, Target=f"integrations/{integration['IntegrationId']}"
                    )
            stage_settings: dict[str, Any] = {
                "DefaultRouteSettings": {"ThrottlingBurstLimit": 200, "ThrottlingRateLimit": 100.0},
                "Tags": self.tags,
            }
            if log_arn:
                stage_settings["AccessLogSettings"] = {
                    "DestinationArn": log_arn,
                    "Format": json.dumps(
                        {
                            "requestId": "$context.requestId",
                            "ip": "$context.identity.sourceIp",
                            "requestTime": "$context.requestTime",
                            "httpMethod": "$context.httpMethod",
                            "routeKey": "$context.routeKey",
                            "status": "$context.status",
                            "protocol": "$context.protocol",
                            "responseLength": "$context.responseLength",
                            "integrationLatency": "$context.integrationLatency",
                            "integrationErrorMessage": "$context.integrationErrorMessage",
                        }
                    ),
                }
            gw.create_stage(ApiId=api["ApiId"], StageName="$default", AutoDeploy=True, **stage_settings)
            gw.create_stage(ApiId=api["ApiId"], StageName=self.env.name, AutoDeploy=False, **stage_settings)
            host = self.env.values.get("api_host")
            if i == 0 and isinstance(host, str):
                domain = gw.create_domain_name(
                    DomainName=host,
                    DomainNameConfigurations=[
                        {
                            "EndpointType": "REGIONAL",
                            "CertificateArn": self.arn(
                                "acm", f"certificate/{uuid.UUID(int=self.rng.getrandbits(128))}"
                            ),
                            "SecurityPolicy": "TLS_1_2",
                        }
                    ],
                    Tags=self.tags,
                )
                config = (domain.get("DomainNameConfigurations") or [{}])[0]
                target = (
                    config.get("ApiGatewayDomainName")
                    or f"d-{self.hexid(10)}.execute-api.{self.env.region}.amazonaws.com"
                )
                self.api_domain_target = (target, config.get("HostedZoneId") or "Z1UJRXOUMOOFQ8")
                gw.create_api_mapping(DomainName=host, ApiId=api["ApiId"], Stage="$default")

    def _site_host(self) -> str:
        host = self.env.values.get("website_host") or self.env.values.get("site_host")
        if isinstance(host, str):
            return host
        api_host = str(self.env.values.get("api_host", "example.com"))
        return api_host.split(".", 1)[-1] if "." in api_host else api_host

    # -- Synthetics ------------------------------------------------------------------------

    def canary_group(self, canary: str) -> str:
        """/aws/lambda/cwsyn-<canary>-<id>: AWS names the canary's function after its id."""
        digest = hashlib.sha256(f"{self.env.account}/{canary}".encode()).hexdigest()[:6]
        return f"/aws/lambda/cwsyn-{canary}-{digest}"

    def seed_canaries(self) -> None:
        canaries = self.names("canary")
        if not canaries:
            return
        syn = self.client("synthetics")
        bucket = self.artifacts_bucket() or self.website_bucket() or "canary-artifacts"
        role = self.role(
            f"{self.prefix}-canary-role",
            [
                {
                    "Effect": "Allow",
                    "Action": ["s3:PutObject", "s3:GetBucketLocation"],
                    "Resource": f"arn:aws:s3:::{bucket}/*",
                },
                {"Effect": "Allow", "Action": "cloudwatch:PutMetricData", "Resource": "*"},
            ],
        )
        for key, canary in canaries:
            is_api = "api" in key
            script = "apiCanaryBlueprint.handler" if is_api else "pageLoadBlueprint.handler"
            syn.create_canary(
                Name=canary,
                Code={"Handler": script, "ZipFile": _zip(f"# {canary}: {self.catalog.resources[key].description}\n")},
                ArtifactS3Location=f"s3://{bucket}/canary/{self.env.region}/{canary}",
                ExecutionRoleArn=role,
                Schedule={"Expression": f"rate({CANARY_PERIOD_MINUTES} minutes)"},
                RunConfig={"TimeoutInSeconds": 60, "MemoryInMB": 1024, "ActiveTracing": True},
                SuccessRetentionPeriodInDays=31,
                FailureRetentionPeriodInDays=31,
                RuntimeVersion="syn-nodejs-puppeteer-9.1",
                Tags=self.tags,
            )
            self._canary_artifacts(bucket, canary, is_api)

    def canary_runs(self, key: str) -> list[tuple[int, bool]]:
        """(minutes ago, passed) of every run in the last hour; one failure 38 minutes ago."""
        runs = []
        for minutes in range(HISTORY_MINUTES - 2, 0, -1):
            if minutes % CANARY_PERIOD_MINUTES == 3:
                runs.append((minutes, not (minutes == 38 and "api" in key)))
        return runs

    def _canary_artifacts(self, bucket: str, canary: str, is_api: bool) -> None:
        if self.artifacts_bucket() is None:
            return
        s3 = self.client("s3")
        key = next(k for k, n in self.names("canary") if n == canary)
        runs = self.canary_runs(key)
        # The last failed run (if any) and the latest one: a report and a HAR or a screenshot each.
        for minutes, passed in [r for r in runs if not r[1]][-1:] + runs[-1:]:
            t = self.now - timedelta(minutes=minutes)
            prefix = f"canary/{self.env.region}/{canary}/{t:%Y/%m/%d/%H}/{t:%M-%S}-{t.microsecond // 1000:03d}"
            status = "PASSED" if passed else "FAILED"
            report = {
                "canaryName": canary,
                "status": status,
                "startTime": _iso(t),
                "endTime": _iso(t + timedelta(seconds=1 if passed else 29)),
            }
            files = {f"SyntheticsReport-{status}.json": ("application/json", json.dumps(report))}
            if is_api:
                files[f"{canary}.har.html"] = ("text/html", "<html><body>HAR of GET /health</body></html>\n")
            else:
                files[f"01-page-loaded-{'succeeded' if passed else 'failed'}.png"] = ("image/png", "\x89PNG\r\n")
            for name, (ctype, body) in files.items():
                s3.put_object(Bucket=bucket, Key=f"{prefix}/{name}", Body=body.encode(), ContentType=ctype)

    # -- CloudFront ------------------------------------------------------------------------

    def seed_cdn(self) -> None:
        bucket = self.website_bucket()
        cf = self.client("cloudfront")
        for key, comment in self.names("cloudfront_distribution"):
            origin = f"{bucket or comment}.s3.{self.env.region}.amazonaws.com"
            config: dict[str, Any] = {
                "CallerReference": f"{self.env.name}-{key}",
                "Comment": comment,
                "Enabled": True,
                "DefaultRootObject": "index.html",
                "Origins": {
                    "Quantity": 1,
                    "Items": [
                        {
                            "Id": "website-s3",
                            "DomainName": origin,
                            "S3OriginConfig": {"OriginAccessIdentity": ""},
                        }
                    ],
                },
                "DefaultCacheBehavior": {
                    "TargetOriginId": "website-s3",
                    "ViewerProtocolPolicy": "redirect-to-https",
                    "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6",  # Managed-CachingOptimized
                    "Compress": True,
                },
                "PriceClass": "PriceClass_100",
            }
            site_host = self.env.values.get("website_host") or self.env.values.get("site_host")
            if isinstance(site_host, str):
                config["Aliases"] = {"Quantity": 1, "Items": [site_host]}
            dist = cf.create_distribution(DistributionConfig=config)["Distribution"]
            self.deployed[f"{key}.id"] = dist["Id"]
            if not self.distribution:
                self.distribution = {"id": dist["Id"], "arn": dist["ARN"], "domain": dist["DomainName"]}

    # -- Route 53 --------------------------------------------------------------------------

    def seed_dns(self) -> None:
        """The zone of api_host, with the API's record (and the site's, when one is known)."""
        api_host = self.env.values.get("api_host")
        if not isinstance(api_host, str) or "." not in api_host:
            return
        zone = api_host.split(".")[-2:]
        zone_name = ".".join(zone)
        r53 = self.client("route53")
        zone_id = r53.create_hosted_zone(
            Name=zone_name,
            CallerReference=f"{self.env.name}-{zone_name}",
            HostedZoneConfig={"Comment": self.prefix, "PrivateZone": False},
        )["HostedZone"]["Id"]
        changes = []
        if self.api_domain_target:
            target, hosted_zone = self.api_domain_target
            changes.append((api_host, target, hosted_zone))
        site_host = self.env.values.get("website_host") or self.env.values.get("site_host")
        if isinstance(site_host, str) and self.distribution:
            changes.append((site_host, self.distribution["domain"], "Z2FDTNDATAQYW2"))  # CloudFront's zone
        if changes:
            r53.change_resource_record_sets(
                HostedZoneId=zone_id,
                ChangeBatch={
                    "Changes": [
                        {
                            "Action": "UPSERT",
                            "ResourceRecordSet": {
                                "Name": name,
                                "Type": "A",
                                "AliasTarget": {"HostedZoneId": hz, "DNSName": target, "EvaluateTargetHealth": False},
                            },
                        }
                        for name, target, hz in changes
                    ]
                },
            )

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

    # -- X-Ray -----------------------------------------------------------------------------

    def seed_traces(self) -> None:
        lead = self.lead_handler()
        if lead is None:
            return
        table = next((n for _, n in self.names("dynamodb_table")), None)
        api = next((n for _, n in self.names("http_api")), None)
        arn = self.function_arn(lead)
        docs = []
        for r in self.requests:
            start = r["start"].timestamp()
            end = start + r["duration"] / 1000
            segment: dict[str, Any] = {
                "name": lead,
                "id": r["segment_id"],
                "trace_id": r["trace_id"],
                "start_time": start,
                "end_time": end,
                "origin": "AWS::Lambda::Function",
                "aws": {
                    "account_id": self.env.account,
                    "function_arn": f"{arn}:{LIVE_ALIAS}",
                    "resource_names": [lead],
                    "request_id": r["request_id"],
                },
                "annotations": {"leadId": r["lead"], "funnelId": "real-estate"},
                "subsegments": [],
            }
            if r["outcome"] == "validation":
                segment["error"] = True
                segment["cause"] = {
                    "exceptions": [
                        {
                            "id": self.hexid(16),
                            "type": "ValidationError",
                            "message": _ERRORS[r["kind"]].format(lead=r["lead"], table=table).split(": ", 1)[1],
                        }
                    ]
                }
            elif r["outcome"] != "ok":
                segment["fault"] = True
                segment["cause"] = {
                    "exceptions": [
                        {
                            "id": self.hexid(16),
                            "type": _ERRORS[r["kind"]].split(":")[0],
                            "message": _ERRORS[r["kind"]].format(lead=r["lead"], table=table),
                        }
                    ]
                }
            if table is not None and r["outcome"] != "validation":
                db_start = start + 0.02
                db_end = end - 0.01
                sub: dict[str, Any] = {
                    "name": "DynamoDB",
                    "id": self.hexid(16),
                    "start_time": db_start,
                    "end_time": db_end,
                    "namespace": "aws",
                    "aws": {
                        "operation": "PutItem",
                        "region": self.env.region,
                        "table_name": table,
                        "retries": 0 if r["outcome"] == "ok" else 3,
                    },
                    "http": {"response": {"status": 200 if r["outcome"] == "ok" else 400}},
                }
                if r["outcome"] == "dynamodb":
                    sub["throttle"] = True
                    sub["error"] = True
                if r["outcome"] == "timeout":
                    sub["fault"] = True
                segment["subsegments"].append(sub)
            docs.append(json.dumps(segment))
            if api is not None:
                docs.append(
                    json.dumps(
                        {
                            "name": f"{api}/$default",
                            "id": self.hexid(16),
                            "trace_id": r["trace_id"],
                            "start_time": start - 0.01,
                            "end_time": end + 0.01,
                            "origin": "AWS::ApiGateway::Stage",
                            "http": {
                                "request": {
                                    "method": "POST",
                                    "url": f"https://{self.env.values.get('api_host', api)}/leads",
                                    "client_ip": r["ip"],
                                },
                                "response": {"status": _HTTP_STATUS[r["kind"]]},
                            },
                            **(
                                {"fault": True}
                                if _HTTP_STATUS[r["kind"]] >= 500
                                else {"error": True}
                                if _HTTP_STATUS[r["kind"]] >= 400
                                else {}
                            ),
                        }
                    )
                )
        xray = self.client("xray")
        for batch in _chunks(docs, 50):
            result = xray.put_trace_segments(TraceSegmentDocuments=batch)
            if result.get("UnprocessedTraceSegments"):
                raise RuntimeError(f"X-Ray refused segments: {result['UnprocessedTraceSegments']}")

    # -- CloudWatch metrics ----------------------------------------------------------------

    def _series(self) -> dict[tuple[str, str, tuple[tuple[str, str], ...]], str | None]:
        """Every (namespace, metric, dimensions) the world publishes, with its unit."""
        series: dict[tuple[str, str, tuple[tuple[str, str], ...]], str | None] = {}

        def add(ns: str, name: str, unit: str | None = None, **dims: str) -> None:
            key = (ns, name, tuple(sorted(dims.items())))
            series[key] = unit or series.get(key) or _UNITS.get(name)

        for _, fn in self.names("lambda_function"):
            for metric in ("Invocations", "Errors", "Duration", "Throttles", "ConcurrentExecutions"):
                add("AWS/Lambda", metric, FunctionName=fn)
        for _, table in self.names("dynamodb_table"):
            for metric in ("ConsumedReadCapacityUnits", "ConsumedWriteCapacityUnits"):
                add("AWS/DynamoDB", metric, TableName=table)
            for metric in ("ReadThrottleEvents", "WriteThrottleEvents"):
                add("AWS/DynamoDB", metric, TableName=table)
            # Published per TableName and Operation only, as AWS does.
            for op in ("PutItem", "GetItem", "Query"):
                add("AWS/DynamoDB", "SuccessfulRequestLatency", TableName=table, Operation=op)
            add("AWS/DynamoDB", "ThrottledRequests", TableName=table, Operation="PutItem")
        if self.api_id:
            for metric in ("Count", "4xx", "5xx", "Latency", "IntegrationLatency"):
                add("AWS/ApiGateway", metric, ApiId=self.api_id)
        for _, queue in self.names("sqs_queue"):
            for metric in (
                "ApproximateNumberOfMessagesVisible",
                "ApproximateAgeOfOldestMessage",
                "NumberOfMessagesSent",
            ):
                add("AWS/SQS", metric, QueueName=queue)
        for _, canary in self.names("canary"):
            for metric in ("SuccessPercent", "Duration", "Failed"):
                add("CloudWatchSynthetics", metric, CanaryName=canary)
        for alarm in self.catalog.alarms:
            metrics = [alarm.metric] if alarm.metric else [q.metric for q in alarm.metrics if q.metric]
            for m in metrics:
                if m is not None:
                    add(m.namespace, m.name, m.unit, **self.dimensions(m))
        return series

    def dimensions(self, m: Metric) -> dict[str, str]:
        """An alarm metric's dimensions in this world (deploy-time ids filled in)."""
        return {k: self.text(v) for k, v in m.dimensions.items()}

    @staticmethod
    def slots() -> list[int]:
        """Minutes ago that carry a data point: every minute of the last half hour (the windows
        commands ask for), every five minutes before (an hour-long graph keeps its shape)."""
        return list(range(HISTORY_MINUTES, DENSE_MINUTES, -5)) + list(range(DENSE_MINUTES, 0, -1))

    def slot(self, t: datetime) -> int:
        """The data point (minutes ago) that counts an event that happened at t."""
        minutes = int((self.now - t).total_seconds() // 60) + 1
        return minutes if minutes <= DENSE_MINUTES else -(-minutes // 5) * 5

    def _failures(self) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        for r in self.requests:
            if r["outcome"] != "ok":
                out.setdefault(self.slot(r["start"]), []).append(r["kind"])
        return out

    def _value(self, ns: str, name: str, dims: dict[str, str], minutes: int) -> float | list[float] | None:
        """One data point of a series (None: nothing published at that minute)."""
        r = self.rng
        width = 1 if minutes <= DENSE_MINUTES else 5  # minutes one data point covers
        failures = self._failures().get(minutes, [])
        if ns == "AWS/Lambda":
            busy = dims.get("FunctionName") == self.lead_handler()
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
            if dims.get("QueueName") == self.scope.get(self.dlq_key() or ""):
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
            key = next((k for k, n in self.names("canary") if n == dims.get("CanaryName")), "")
            runs = dict(self.canary_runs(key))
            if minutes not in runs:
                return None
            return {
                "SuccessPercent": 100.0 if runs[minutes] else 0.0,
                "Failed": 0.0 if runs[minutes] else 1.0,
                "Duration": 1000.0 if runs[minutes] else 29100.0,
            }.get(name, 1.0)
        return float(r.randint(0, 3))

    def _dlq_slots(self) -> list[int]:
        return [self.slot(r["start"]) for r in self.failed_requests()]

    def seed_metrics(self) -> None:
        cw = self.client("cloudwatch")
        top = self.now.replace(second=0, microsecond=0)
        by_namespace: dict[str, list[dict[str, Any]]] = {}
        for (ns, name, dims), unit in self._series().items():
            dim_dict = dict(dims)
            if ns == "CloudWatchSynthetics":
                key = next((k for k, n in self.names("canary") if n == dim_dict.get("CanaryName")), "")
                minutes_list = [m for m, _ in self.canary_runs(key)]
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
            for batch in _chunks(data, 1000):
                cw.put_metric_data(Namespace=ns, MetricData=batch)

    # -- CloudWatch alarms and dashboards --------------------------------------------------

    def alarm_kwargs(self) -> list[dict[str, Any]]:
        """The alarm export's definitions, with the ids moto gave (the API's) where they belong."""
        return put_metric_alarm_kwargs(self.catalog, self.env.name, self.site_url, deployed=self.deployed)

    def seed_alarms(self) -> None:
        cw = self.client("cloudwatch")
        kwargs = self.alarm_kwargs()
        for kw in kwargs:
            cw.put_metric_alarm(**kw)
        names = {a.id: self.text(a.name) for a in self.catalog.alarms}
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
                    f"{_COMPARISON_WORDS[kw['ComparisonOperator']]} the threshold ({float(kw['Threshold'])})."
                ),
                StateReasonData=json.dumps({"version": "1.0", "queryDate": _iso(self.now)}),
            )

    def seed_dashboards(self) -> None:
        cw = self.client("cloudwatch")
        for _, dashboard in self.names("dashboard"):
            cw.put_dashboard(DashboardName=dashboard, DashboardBody=json.dumps(self._dashboard_body()))

    def _dashboard_body(self) -> dict[str, Any]:
        widgets = []
        for n, alarm in enumerate(self.catalog.alarms):
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
                        "region": self.env.region,
                        "metrics": lines,
                        "view": "timeSeries",
                        "annotations": {"alarms": [self.arn("cloudwatch", f"alarm:{self.text(alarm.name)}")]},
                    },
                }
            )
        lead = self.lead_handler()
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
                        "region": self.env.region,
                        "query": f"SOURCE '/aws/lambda/{lead}' | fields @timestamp, @message "
                        "| filter @message like /ERROR/ | sort @timestamp desc | limit 20",
                    },
                }
            )
        return {"widgets": widgets}
