"""What every area of the world is given: one environment's catalog view, clients and helpers,
and what seeding learns on the way (ids moto picks) for the areas that need it later."""

from __future__ import annotations

import functools
import hashlib
import random
import re
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import boto3
import botocore.loaders
import botocore.session
from botocore.config import Config

from runbook.data import placeholders
from runbook.data.model import Catalog, Environment

from .story import Invocation, plan_invocations

ACCOUNT_HEADER = "x-moto-account-id"

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

T = TypeVar("T")


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


# ------------------------------------------------------------------ helpers every area uses


def tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def iso_ms(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


# ------------------------------------------------------------------ one environment


@dataclass(frozen=True)
class Distribution:
    """The site's CloudFront distribution, as moto created it (what the bucket policy and DNS need)."""

    arn: str
    domain: str


class World:
    """One environment's world as the areas see it: the catalog, the clients, the helpers, and
    what one area's step learned that a later step needs (the steps' order guarantees it is set)."""

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
        self.api_id = ""  # the first HTTP API's (compute's `api` step)
        # Deploy-time attributes ({api.id}, {website_cdn.id}) → their values in this world
        # (`api` and `cdn` steps).
        self.deployed: dict[str, str] = {}
        self.api_domain_target: tuple[str, str] | None = None  # (DNS name, hosted zone) (`api`)
        self.distribution: Distribution | None = None  # the first distribution (`cdn`)
        # Planned before any step runs, from the environment's own generator.
        self.invocations: list[Invocation] = plan_invocations(self)

    # -- plumbing --------------------------------------------------------------------------

    def client(self, service: str) -> Any:
        return _client(self.endpoint_url, self.env.account, self.env.region, service)

    @property
    def rng(self) -> random.Random:
        rng: random.Random | None = getattr(self._local, "rng", None)
        return rng or self._main_rng

    @contextmanager
    def drawing_for(self, step: str) -> Iterator[None]:
        """While a step runs (in this thread), `rng` is the step's own generator."""
        self._local.rng = random.Random(f"kanjona-world/{self.env.name}/{step}")
        try:
            yield
        finally:
            self._local.rng = None

    # -- the catalog in this environment ---------------------------------------------------

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

    def arn(self, service: str, resource: str, region: bool = True) -> str:
        return f"arn:aws:{service}:{self.env.region if region else ''}:{self.env.account}:{resource}"

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

    def lead_handler(self) -> str | None:
        key = self.primary("lambda_function", "lead")
        return self.scope[key] if key else None

    def function_arn(self, function: str) -> str:
        return self.arn("lambda", f"function:{function}")

    def dlq_key(self) -> str | None:
        keys = [k for k, _ in self.names("sqs_queue")]
        return next((k for k in keys if "dlq" in k or "dead" in k), None)

    def website_bucket(self) -> str | None:
        key = self.primary("s3_bucket", "website")
        return self.scope[key] if key else None

    def artifacts_bucket(self) -> str | None:
        keys = [k for k, _ in self.names("s3_bucket") if "canary" in k or "artifact" in k]
        return self.scope[keys[0]] if keys else None

    def site_host(self) -> str:
        host = self.env.values.get("website_host") or self.env.values.get("site_host")
        if isinstance(host, str):
            return host
        api_host = str(self.env.values.get("api_host", "example.com"))
        return api_host.split(".", 1)[-1] if "." in api_host else api_host

    def canary_group(self, canary: str) -> str:
        """/aws/lambda/cwsyn-<canary>-<id>: AWS names the canary's function after its id."""
        digest = hashlib.sha256(f"{self.env.account}/{canary}".encode()).hexdigest()[:6]
        return f"/aws/lambda/cwsyn-{canary}-{digest}"

    # -- the story in this environment -----------------------------------------------------

    def lead_id(self, offset: int = 0) -> str:
        sample = self.sample("lead-id")
        return str(int(sample) + offset) if sample.isdigit() else f"{sample}-{offset}" if offset else sample

    def failed_invocations(self) -> list[Invocation]:
        """The failed invocations whose messages wait in the dead-letter queue (the last three)."""
        return [r for r in self.invocations if r.outcome != "ok"][-3:]

    def hexid(self, n: int) -> str:
        return "".join(self.rng.choice("0123456789abcdef") for _ in range(n))

    def request_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def ago(self, seconds: float) -> datetime:
        return self.now - timedelta(seconds=seconds)
