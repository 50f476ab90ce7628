"""The world's core: boto3 clients per moto account, names and time helpers, the step runner."""

from __future__ import annotations

import functools
import os
import random
import re
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import botocore.loaders
import botocore.session
from botocore.config import Config

from runbook.data import placeholders
from runbook.data.load import Catalog
from runbook.data.model import Environment

ACCOUNT_HEADER = "x-moto-account-id"
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


def _tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


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


class WorldBase:
    """One environment's world, without its seeding steps (the mixins add those)."""

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
