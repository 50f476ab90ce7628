#!/usr/bin/env python3
"""Benchmark of the verification gate, measured in one run; prints figures, asserts nothing.

- static tier: ms per `aws` command (one reused checker)
- execution tier: ms per command through the sandbox next to a bare `aws` v2 call against
  the same moto server, and their ratio
- moto start and world seeding time
- the whole gate, every environment, with the default number of lanes (one per core)

Usage: RUNBOOK_AWS_CLI=/usr/bin/aws .venv/bin/python scripts/bench_gate.py [--samples N]
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from runbook.gate import run as gate  # noqa: E402
from runbook.gate.sandbox.sandbox import EnvCredentials, Sandbox  # noqa: E402
from runbook.gate.static.checker import StaticChecker  # noqa: E402
from runbook.gate.static.cli import find_aws_cli_v2  # noqa: E402
from runbook.site import build  # noqa: E402


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=15, help="commands timed in the execution tier")
    args = parser.parse_args()
    aws = find_aws_cli_v2(os.environ.get("RUNBOOK_AWS_CLI", "/usr/bin/aws"))
    print(f"cpus: {os.cpu_count()}, AWS CLI: {aws}")

    start = time.perf_counter()
    plan = gate.plan(ROOT / "mkdocs.yml")
    site_url = build.site_url(ROOT / "mkdocs.yml")  # what the world's alarms link to
    print(f"render + extract: {time.perf_counter() - start:.2f} s ({len(plan.snippets)} blocks)")
    shell = [s for s in plan.snippets if s.lang == "bash" and not s.options.get("skip")]

    # Static tier: every bash block, one checker.
    with StaticChecker(aws) as checker:
        checker.check_shell("aws sts get-caller-identity\n")  # start-up is not per command
        argvs = []
        start = time.perf_counter()
        for s in shell:
            argvs += [c.argv for c in checker.check_shell(plan.runnable_text(s))[1]]
        static = time.perf_counter() - start
        start = time.perf_counter()
        for argv in argvs:
            checker.validate_aws(argv)
        validate = time.perf_counter() - start
    print(f"static tier: {len(argvs)} aws commands in {len(shell)} blocks: {ms(validate / len(argvs))} per "
          f"command (CLI v2 parse + API model checks); {ms(static / len(shell))} per block with bash "
          f"expansion, syntax and shellcheck")

    # Execution tier: single-command read-only blocks, sandbox vs bare CLI, interleaved.
    singles = [
        s for s in shell
        if s.env == plan.catalog.default_env.name and s.text.count("aws ") == 1 and "$(" not in s.text
        and "|" not in s.text and not s.options.get("mutates") and not s.options.get("stream")
        and not s.options.get("xfail")
    ][: args.samples]
    start = time.perf_counter()
    sb = Sandbox(aws, readable=[plan.catalog.root])
    sb.start()
    print(f"sandbox + moto start: {time.perf_counter() - start:.2f} s (isolation: {sb.isolation})")
    try:
        for env in plan.catalog.environments:
            start = time.perf_counter()
            creds = sb.call("runbook.world:seed", data_root=str(plan.catalog.root), env=env.name, site_url=site_url)
            sb.set_credentials(EnvCredentials(**creds))
            print(f"seed {env.name}: {time.perf_counter() - start:.2f} s")
        start = time.perf_counter()
        sb.reset()
        sb.set_credentials(EnvCredentials(**sb.call("runbook.world:seed", data_root=str(plan.catalog.root),
                                                   env=plan.catalog.default_env.name, site_url=site_url)))
        print(f"reset + reseed {plan.catalog.default_env.name}: {time.perf_counter() - start:.2f} s")
        gated, bare = [], []
        for s in singles:
            text = plan.runnable_text(s)
            argv = [aws, "--endpoint-url", sb.endpoint_url, *shlex.split(text.replace("\\\n", " "))[1:]]
            for _ in range(2):  # interleaved, the second pair counts (caches warm for both)
                b = sb.exec_bare(argv, s.env)
                g = sb.run("bash", text, s.env)
            bare.append(b.seconds)
            gated.append(g.seconds)
        mb, mg = statistics.median(bare), statistics.median(gated)
        print(f"execution tier over {len(singles)} commands (median): gate {ms(mg)}, bare aws v2 {ms(mb)}, "
              f"ratio {mg / mb:.2f}")
    finally:
        sb.close()

    start = time.perf_counter()
    results = gate.run(plan, aws_cli=aws)
    total = time.perf_counter() - start
    counts = gate.summary(results)
    envs = ", ".join(e.name for e in plan.catalog.environments)
    print(f"whole gate ({envs}; {len(results)} blocks, {os.cpu_count()} lanes): {total:.1f} s "
          f"+ {plan.build_seconds:.1f} s site build; {gate.summary_line(counts)}, {counts['xfailed']} xfailed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
