#!/usr/bin/env python3
"""What does the sandbox cost per command? Sandbox.run vs a bare CLI call, both in the netns.

    .venv/bin/python scripts/bench_execute.py [-n 20] [--aws-cli /usr/bin/aws]

Starts a sandbox, creates a DynamoDB table, then times N runs of
`aws dynamodb describe-table` through Sandbox.run (bash, prelude, shims, fresh HOME/cwd per
run) and N bare `<cli> --endpoint-url ... dynamodb describe-table` subprocesses started by the
same worker (Sandbox.exec_bare: no shell, no shims, nothing but credentials). The two are
interleaved so that drift on the machine hits both alike. Prints start and reset times, the
median and mean ms of each, and the ratio of medians (target: <= 1.2).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runbook.sandbox import EnvCredentials, GateError, Sandbox  # noqa: E402

TABLE = "bench-orders"
CREDS = EnvCredentials(env="bench", account="123456789012", region="eu-west-1",
                       access_key_id="AKIABENCHEXAMPLE0001", secret_access_key="bench-secret")
CREATE = (f"aws dynamodb create-table --table-name {TABLE} "
          "--attribute-definitions AttributeName=pk,AttributeType=S "
          "--key-schema AttributeName=pk,KeyType=HASH --billing-mode PAY_PER_REQUEST >/dev/null")
DESCRIBE = f"aws dynamodb describe-table --table-name {TABLE}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20)
    parser.add_argument("--aws-cli", default=os.environ.get("RUNBOOK_AWS_CLI", "/usr/bin/aws"))
    args = parser.parse_args()

    started = time.monotonic()
    sb = Sandbox(args.aws_cli)
    try:
        sb.start()
    except GateError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    try:
        print(f"sandbox start: {(time.monotonic() - started) * 1000:.0f} ms "
              f"(isolation: {sb.isolation})")
        sb.set_credentials(CREDS)
        for _ in range(3):  # the last one is timed; the first pays for cold caches
            t0 = time.monotonic()
            sb.reset()
            reset_ms = (time.monotonic() - t0) * 1000
        print(f"sandbox reset: {reset_ms:.1f} ms")
        sb.set_credentials(CREDS)
        created = sb.run("bash", CREATE, "bench")
        if created.rc != 0:
            print(f"bench: create-table failed: {created.stderr}", file=sys.stderr)
            return 1

        bare_argv = [args.aws_cli, "--endpoint-url", sb.endpoint_url, "dynamodb", "describe-table",
                     "--table-name", TABLE]
        # One untimed round of each: page cache, Python bytecode, moto's first request.
        sb.run("bash", DESCRIBE, "bench")
        sb.exec_bare(bare_argv, "bench")

        sandboxed: list[float] = []
        bare: list[float] = []
        for _ in range(args.n):
            t0 = time.monotonic()
            r = sb.run("bash", DESCRIBE, "bench")
            sandboxed.append((time.monotonic() - t0) * 1000)
            if r.rc != 0 or TABLE not in r.stdout:
                print(f"bench: sandboxed describe-table failed: {r.stderr}", file=sys.stderr)
                return 1
            t0 = time.monotonic()
            r = sb.exec_bare(bare_argv, "bench")
            bare.append((time.monotonic() - t0) * 1000)
            if r.rc != 0 or TABLE not in r.stdout:
                print(f"bench: bare describe-table failed: {r.stderr}", file=sys.stderr)
                return 1
    finally:
        sb.close()

    def line(name: str, ms: list[float]) -> str:
        return (f"{name:<10} n={len(ms)} median {statistics.median(ms):6.1f} ms  "
                f"mean {statistics.fmean(ms):6.1f} ms  min {min(ms):6.1f}  max {max(ms):6.1f}")

    print(line("sandbox", sandboxed))
    print(line("bare", bare))
    ratio = statistics.median(sandboxed) / statistics.median(bare)
    print(f"ratio (median sandbox / median bare): {ratio:.3f}  (target <= 1.2)")
    return 0 if ratio <= 1.2 else 1


if __name__ == "__main__":
    sys.exit(main())
