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

Each area (identity, storage, compute, edge, logs, traces, metrics) is an object given the
environment's World (context.py): the catalog, the clients, the shared helpers, and what one
area's step learned that another's needs (the API's id, the distribution); seeding.py runs
their steps.

Seeding one environment takes ~0.4 s on a warm moto server (scripts/bench_world.py); the first
seeding in a process pays ~2-5 s more for moto importing its service modules.
"""

from __future__ import annotations

import json
import urllib.request

from runbook.data.load import load_cached, load_kept

from .context import World
from .seeding import seed_world

__all__ = ["seed", "seed_all", "use_lambda_without_docker"]


def seed(endpoint_url: str, data_root: str, env: str, site_url: str, catalog: str = "") -> dict[str, str]:
    """Create env's world in its own moto account; return {"env", "account", "region",
    "access_key_id", "secret_access_key"}: an access key moto issued inside that account.

    `site_url` (mkdocs.yml's, ending with a slash) is what the alarms' descriptions link to.
    Meant for a fresh (or reset) moto server: seeding the same environment twice fails on
    the first resource that already exists. `catalog`: the file the caller's disk cache keeps
    the data's catalog in (runbook.data.load.kept_file), read instead of loading the data.
    """
    use_lambda_without_docker(endpoint_url)
    world = World(endpoint_url, load_kept(data_root, catalog), env, site_url)
    access_key = seed_world(world)
    return {"env": world.env.name, "account": world.env.account, "region": world.env.region, **access_key}


def seed_all(endpoint_url: str, data_root: str, site_url: str, envs: list[str] | None = None) -> list[dict[str, str]]:
    """`seed` every environment of the catalog (or the named ones), in catalog order."""
    catalog = load_cached(data_root)
    names = envs if envs is not None else [e.name for e in catalog.environments]
    return [seed(endpoint_url, data_root, name, site_url) for name in names]


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
