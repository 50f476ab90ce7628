#!/usr/bin/env python3
"""What does a command cost in the sandbox? Bare CLI vs Sandbox.run, with and without the CLI
fork server, all inside the sandbox's namespaces.

    .venv/bin/python scripts/bench_execute.py [-n 20] [--aws-cli /usr/bin/aws]

Starts two sandboxes, one with the fork server (``fast_cli=True``, the default) and one
without (``fast_cli=False``: the real CLI per call), creates a DynamoDB table in each, then
times, N times and interleaved so that drift on the machine hits all alike:

* ``bare``: ``<cli> --endpoint-url ... dynamodb describe-table`` started by the worker with
  nothing but credentials (Sandbox.exec_bare: no shell, no shims, no fork server);
* ``fast``: ``aws dynamodb describe-table`` through Sandbox.run (bash, prelude, shims, fresh
  HOME/cwd per run) with the fork server;
* ``slow``: the same through Sandbox.run with ``fast_cli=False``.

Prints start and reset times, the median and mean ms of each, and the ratios of medians.
Exit status 1 if the sandbox's own overhead (slow / bare) exceeds 1.2 or the fork server does
not make a run faster than a bare call (fast / bare >= 1).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runbook.gate.sandbox.sandbox import EnvCredentials, GateError, Sandbox  # noqa: E402

TABLE = "bench-orders"
CREDS = EnvCredentials(env="bench", account="123456789012", region="eu-west-1",
                       access_key_id="AKIABENCHEXAMPLE0001", secret_access_key="bench-secret")
CREATE = (f"aws dynamodb create-table --table-name {TABLE} "
          "--attribute-definitions AttributeName=pk,AttributeType=S "
          "--key-schema AttributeName=pk,KeyType=HASH --billing-mode PAY_PER_REQUEST >/dev/null")
DESCRIBE = f"aws dynamodb describe-table --table-name {TABLE}"


def _start(aws_cli: str, fast_cli: bool) -> Sandbox:
    started = time.monotonic()
    sb = Sandbox(aws_cli, fast_cli=fast_cli)
    sb.start()
    label = "fast_cli" if fast_cli else "no fast_cli"
    print(f"sandbox start ({label}): {(time.monotonic() - started) * 1000:.0f} ms "
          f"(isolation: {sb.isolation})")
    sb.set_credentials(CREDS)
    return sb


def _timed(fn, check) -> float:
    t0 = time.monotonic()
    r = fn()
    ms = (time.monotonic() - t0) * 1000
    if r.rc != 0 or TABLE not in r.stdout:
        raise RuntimeError(f"{check} describe-table failed: {r.stderr}")
    return ms


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20)
    parser.add_argument("--aws-cli", default=os.environ.get("RUNBOOK_AWS_CLI", "/usr/bin/aws"))
    args = parser.parse_args()

    boxes: list[Sandbox] = []
    try:
        try:
            fast_sb = _start(args.aws_cli, True)
            boxes.append(fast_sb)
            slow_sb = _start(args.aws_cli, False)
            boxes.append(slow_sb)
        except GateError as exc:
            print(f"bench: {exc}", file=sys.stderr)
            return 2
        for _ in range(3):  # the last one is timed; the first pays for cold caches
            t0 = time.monotonic()
            fast_sb.reset()
            reset_ms = (time.monotonic() - t0) * 1000
        print(f"sandbox reset: {reset_ms:.1f} ms (the fork server keeps running)")
        for sb in boxes:
            sb.set_credentials(CREDS)
            created = sb.run("bash", CREATE, "bench")
            if created.rc != 0:
                print(f"bench: create-table failed: {created.stderr}", file=sys.stderr)
                return 1
        zygote = fast_sb.zygote_info(wait=True)
        if not zygote["ready"]:
            print(f"bench: the fork server is not ready: {zygote['note']}", file=sys.stderr)
            return 1
        print(f"fork server: warm-up {zygote['status']['warm_seconds'] * 1000:.0f} ms")

        bare_argv = [args.aws_cli, "--endpoint-url", fast_sb.endpoint_url, "dynamodb",
                     "describe-table", "--table-name", TABLE]
        runs = {
            "bare": (lambda: fast_sb.exec_bare(bare_argv, "bench")),
            "fast": (lambda: fast_sb.run("bash", DESCRIBE, "bench")),
            "slow": (lambda: slow_sb.run("bash", DESCRIBE, "bench")),
        }
        for fn in runs.values():  # one untimed round of each: page cache, moto's first request
            fn()
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.n):
            for name, fn in runs.items():
                times[name].append(_timed(fn, name))
        served = fast_sb.zygote_info()["status"]["served"]
    except RuntimeError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    finally:
        for sb in boxes:
            sb.close()

    labels = {"bare": "bare CLI", "fast": "run, fork server", "slow": "run, real CLI"}

    def line(name: str) -> str:
        ms = times[name]
        return (f"{labels[name]:<18} n={len(ms)} median {statistics.median(ms):6.1f} ms  "
                f"mean {statistics.fmean(ms):6.1f} ms  min {min(ms):6.1f}  max {max(ms):6.1f}")

    for name in runs:
        print(line(name))
    med = {name: statistics.median(ms) for name, ms in times.items()}
    print(f"fork server served {served} commands")
    print(f"ratio run (fork server) / bare:  {med['fast'] / med['bare']:.3f}")
    print(f"ratio run (real CLI) / bare:     {med['slow'] / med['bare']:.3f}  (sandbox overhead, "
          "target <= 1.2)")
    print(f"speed-up of the fork server:     {med['slow'] / med['fast']:.2f}x per run")
    ok = med["slow"] / med["bare"] <= 1.2 and med["fast"] < med["bare"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
