"""Seeding one environment: every area's steps, each as soon as the steps it needs are done."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from .compute import Compute
from .context import World
from .edge import Edge
from .identity import Identity
from .logs import Logs
from .metrics import Metrics
from .storage import Storage
from .traces import Traces

# Set to a list to collect (step, start s, end s) of every seeding step (scripts/bench_world.py).
TRACE_STEPS: list[tuple[str, float, float]] | None = None

# moto answers ~1.6 times as many requests with 2-4 clients in flight as with one.
SEED_THREADS = int(os.environ.get("RUNBOOK_WORLD_THREADS", "3"))

Steps = dict[str, tuple[Callable[[], None], tuple[str, ...]]]


def seed_world(world: World) -> dict[str, str]:
    """Seed every area of `world`; return the operator's access key ({access_key_id, secret_access_key})."""
    identity = Identity(world)
    storage, compute, edge = Storage(world), Compute(world), Edge(world)
    logs, traces, metrics = Logs(world), Traces(world), Metrics(world)
    # Steps and the steps they need done first (an id moto picks, a bucket to write into).
    # Listed longest chain first: steps start in this order when their needs are met.
    steps: Steps = {
        "api": (compute.seed_api, ()),
        "cdn": (edge.seed_cdn, ()),
        "queues": (storage.seed_queues, ()),
        "logs": (logs.seed_logs, ()),
        "metrics": (metrics.seed_metrics, ("api", "cdn")),
        "alarms": (metrics.seed_alarms, ("api", "cdn")),
        "functions": (compute.seed_functions, ("queues",)),
        "buckets": (storage.seed_buckets, ()),
        "canaries": (compute.seed_canaries, ("buckets",)),
        "identity": (identity.seed_identity, ()),
        "tables": (storage.seed_tables, ()),
        "website_objects": (storage.seed_website_objects, ("buckets", "cdn")),
        "dns": (edge.seed_dns, ("api", "cdn")),
        "topics": (identity.seed_topics, ()),
        "secrets": (storage.seed_secrets, ()),
        "traces": (traces.seed_traces, ()),
        "dashboards": (metrics.seed_dashboards, ("api", "cdn")),
    }
    run_steps(world, steps)
    return identity.access_key


def run_steps(world: World, steps: Steps) -> None:
    """Every step once, each as soon as the steps it needs are done, a few at a time."""
    started = time.perf_counter()

    def run(name: str) -> None:
        start = time.perf_counter()
        try:
            with world.drawing_for(name):
                steps[name][0]()
        finally:
            if TRACE_STEPS is not None:
                TRACE_STEPS.append((name, start - started, time.perf_counter() - started))

    done: set[str] = set()
    waiting = {name: needs for name, (_, needs) in steps.items()}
    running: dict[Future[None], str] = {}
    with ThreadPoolExecutor(SEED_THREADS, thread_name_prefix=f"world-{world.env.name}") as pool:
        while waiting or running:
            for name, needs in list(waiting.items()):
                if len(running) < SEED_THREADS and all(n in done for n in needs):
                    running[pool.submit(run, name)] = name
                    del waiting[name]
            if not running:
                raise RuntimeError(f"seeding steps wait for each other: {sorted(waiting)}")
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                name = running.pop(future)
                try:
                    future.result()
                except BaseException as exc:
                    for other in running:
                        other.cancel()
                    raise RuntimeError(f"seeding {world.env.name}: step '{name}' failed: {exc}") from exc
                done.add(name)
