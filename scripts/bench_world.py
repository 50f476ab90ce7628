"""Time the gate's world: seed every environment into a fresh moto server, several rounds.

    .venv/bin/python scripts/bench_world.py [--rounds N] [--steps]

The first round pays for moto importing its service modules and for botocore clients; the
gate pays it once per sandbox worker. Later rounds (after a moto reset) are what every
reseed costs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from moto.server import ThreadedMotoServer  # noqa: E402

from runbook import world  # noqa: E402
from runbook.data.load import load_cached  # noqa: E402
from runbook.gate.sandbox import moto_tuning  # noqa: E402
from runbook.site import build  # noqa: E402
from runbook.world import seeding as world_seeding  # noqa: E402


def _post(url: str) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    opener.open(urllib.request.Request(url, data=b"{}", method="POST"), timeout=10).read()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", action="store_true", help="print when each seeding step ran (last round)")
    parser.add_argument("--data", default=str(ROOT / "runbook_data"))
    args = parser.parse_args()

    moto_tuning.apply()  # as the gate's moto host does
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{server.get_host_and_port()[1]}"
        envs = [e.name for e in load_cached(args.data).environments]
        site_url = build.site_url(ROOT / "mkdocs.yml")
        times: dict[str, list[float]] = {e: [] for e in envs}
        for n in range(args.rounds):
            if n:
                _post(endpoint + "/moto-api/reset")
            for env in envs:
                start = time.perf_counter()
                world.seed(endpoint, args.data, env, site_url)
                times[env].append(time.perf_counter() - start)
        report = {
            env: {
                "first_s": round(t[0], 3),
                "reseed_median_s": round(statistics.median(t[1:]), 3) if len(t) > 1 else None,
                "reseed_max_s": round(max(t[1:]), 3) if len(t) > 1 else None,
            }
            for env, t in times.items()
        }
        print(json.dumps(report, indent=2))
        if args.steps:
            _post(endpoint + "/moto-api/reset")
            world_seeding.TRACE_STEPS = []
            world.seed(endpoint, args.data, envs[0], site_url)
            for name, start, end in world_seeding.TRACE_STEPS:
                print(f"{name:16s} {start * 1000:6.0f} → {end * 1000:6.0f} ms")
            world_seeding.TRACE_STEPS = None
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
