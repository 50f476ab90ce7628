"""`runbook drill`: run the drills and print, per alarm and environment, what each step found."""

from __future__ import annotations

import argparse
import sys
import time

from runbook.data.load import load_cached
from runbook.errors import GateError, Problem, github_annotation

from .run import FAIL, NOT_USEFUL, DrillResult, drills, origin_loc, run

MARK = {"ok": "ok", "found": "found", FAIL: "FAILED", "not run": "not run", NOT_USEFUL: "not useful"}


def report(result: DrillResult) -> list[str]:
    head = "passed" if result.passed else "FAILED"
    out = [f"{result.alarm} [{result.env}] {head} in {result.seconds:.1f} s: {result.scenario}"]
    for line in result.lines:
        where = f"  ({line.where})" if line.where else ""
        out.append(f"  {line.what:<11} {MARK.get(line.status, line.status)}: {line.text}{where}")
    return out


def not_useful(results: list[DrillResult]) -> list[Problem]:
    """Steps that revealed nothing in any environment's drill: located warnings at the step."""
    seen: dict[tuple[str, str], set[str]] = {}
    for r in results:
        for line in r.lines:
            if line.what.startswith("step ") and line.origin:
                seen.setdefault((r.alarm, line.what), set()).add(line.status)
    problems = []
    for (alarm, what), statuses in seen.items():
        if statuses == {NOT_USEFUL}:
            origin = next(line.origin for r in results if r.alarm == alarm for line in r.lines if line.what == what)
            problems.append(Problem(origin_loc(origin), f"warning: {what} of alarm '{alarm}' reveals nothing in its "
                                                        "drill: give it a `finds:` or reconsider the step"))
    return sorted(problems)


def main(args: argparse.Namespace) -> int:
    from runbook.gate.run import _BuildFailed, plan

    start = time.perf_counter()
    try:
        catalog = load_cached(args.mkdocs.resolve().parent / "runbook_data")
        selected = drills(catalog, args.alarms or (), args.envs or ())
        if not selected:
            raise GateError("no alarm has a drill")
        p = plan(args.mkdocs, envs=sorted({env for _, env in selected}))
        try:
            results = run(p, selected, jobs=args.jobs)
        finally:
            p.close()
    except GateError as exc:
        print(f"runbook drill: {exc}", file=sys.stderr)
        return 2
    except _BuildFailed as exc:
        print(f"runbook drill: the site did not build: {exc}", file=sys.stderr)
        return 1
    for r in results:
        print("\n".join(report(r)))
    warnings = not_useful(results)
    if args.format == "github":  # annotations on the YAML line to fix
        for r in results:
            for problem in r.problems():
                print(problem.github())
        for w in warnings:
            print(github_annotation(w.loc, w.message.removeprefix("warning: "), level="warning"))
    for w in warnings:
        print(w, file=sys.stderr)
    failed = [r for r in results if not r.passed]
    for r in failed:
        for line in r.failures():
            print(line, file=sys.stderr)
    print(f"{len(results) - len(failed)} of {len(results)} drills passed "
          f"({len({r.alarm for r in results})} alarms) in {time.perf_counter() - start:.1f} s")
    return 1 if failed else 0
