"""The verification gate: render the site, take every code block, check it statically, run it on moto."""

from __future__ import annotations

import argparse
import json
import os
import queue
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from fnmatch import fnmatch
from pathlib import Path

from runbook.data.load import load_cached
from runbook.data.model import Catalog
from runbook.data.placeholders import substitute
from runbook.errors import GateError, shown_path
from runbook.export.fsio import write_atomic
from runbook.gate.sandbox.sandbox import EnvCredentials, Sandbox
from runbook.gate.snippets import Snippet, extract_dir
from runbook.gate.static.checker import AwsCall, StaticChecker, is_read_only_operation
from runbook.gate.static.cli import find_aws_cli_v2
from runbook.gate.verdict import judge
from runbook.site import build
from runbook.site.annotation import AnnotationError

__all__ = ["GateError", "Plan", "Result", "plan", "run"]

# What the JSON report keeps of each result (timings vary from run to run).
REPORT_FIELDS = ("page", "line", "env", "tier", "status", "command", "message", "origin")

PROJECT = Path(__file__).resolve().parents[2]

# Python (boto3) method names that change state.
MUTATING_PY = ("put_", "create_", "delete_", "update_", "send_", "rotate_", "restore_", "invoke", "receive_",
               "start_", "stop_", "tag_", "set_", "purge_", "publish")


@dataclass
class Result:
    page: str
    line: int
    env: str
    tier: str  # "static" | "exec" | "extract"
    status: str  # passed | failed | skipped | xfailed | xpassed
    command: str
    message: str = ""
    origin: str | None = None
    seconds: float = 0.0
    static_seconds: float = 0.0
    aws_calls: int = 0

    @property
    def key(self) -> str:
        return f"{self.page}:{self.line}[{self.env}]"

    def line_text(self) -> str:
        first = self.message.strip().splitlines()[0] if self.message.strip() else ""
        return f"{self.page}:{self.line} [{self.env}] {self.tier}: {self.status}: {first}"


@dataclass
class Plan:
    """Snippets ready to run, with the sample values of operator inputs filled in."""

    snippets: list[Snippet]
    catalog: Catalog
    rendered_dir: Path
    build_seconds: float
    site_url: str
    _tmp: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)

    def runnable_text(self, s: Snippet) -> str:
        """The block with each <fill-in> replaced by its sample (placeholders of the sample resolved)."""
        text = s.text
        scope = self.catalog.scope(s.env) if s.env in {e.name for e in self.catalog.environments} else {}
        for name in s.fill_ins():
            spec = self.catalog.inputs.get(name)
            if spec is not None:
                text = text.replace(f"<{name}>", substitute(spec.sample, scope, lambda n: f"<{n}>"))
        return text


# ------------------------------------------------------------------ rendering


class _BuildFailed(Exception):
    """The site did not build: a user error (bad page, dangling link), reported with exit 1."""


def plan(
    mkdocs_yml: Path = PROJECT / "mkdocs.yml",
    docs_dir: Path | None = None,
    envs: Sequence[str] | None = None,
    pages: Sequence[str] | None = None,
) -> Plan:
    """Render the site and extract every block for the chosen environments and pages."""
    catalog = load_cached(mkdocs_yml.resolve().parent / "runbook_data")
    known = [e.name for e in catalog.environments]
    for env in envs or ():
        if env not in known:
            raise GateError(f"unknown environment '{env}' (known: {', '.join(known)})")
    tmp = tempfile.TemporaryDirectory(prefix="runbook-gate-")
    out = Path(tmp.name)
    built = build.build(mkdocs_yml, out, docs_dir=docs_dir)
    if built.output:
        print(built.output, file=sys.stderr)
    if not built.ok:
        raise _BuildFailed(built.output.splitlines()[-1] if built.output else f"exit status {built.returncode}")
    # The site's own pages are named as in the repository; another folder as given.
    shown = "docs/" if docs_dir is None else shown_path(docs_dir) + "/"
    try:
        snippets = extract_dir(built.rendered_dir, shown, known, catalog.default_env.name)
    except AnnotationError as exc:
        raise _BuildFailed(str(exc)) from None
    chosen = [
        s
        for s in snippets
        if (not envs or s.env in envs)
        and (not pages or any(fnmatch(s.page, p) or fnmatch(s.page, f"*{p}") for p in pages))
    ]
    return Plan(chosen, catalog, built.rendered_dir, built.seconds, build.site_url(mkdocs_yml), tmp)


# ------------------------------------------------------------------ one lane: a checker and a sandbox


def _mutates(s: Snippet, calls: Iterable[AwsCall]) -> bool:
    if s.annotation.mutates is not None:
        return s.annotation.mutates
    if s.lang == "python":
        return any(f".{verb}" in s.text for verb in MUTATING_PY)
    # Blocks that only read share one world; anything else (or unknown) gets a fresh one.
    return not all(is_read_only_operation(call.operation) for call in calls)


class Lane:
    """A static checker and (unless static-only) one sandbox with its own moto world."""

    def __init__(self, aws_cli: str, data_root: Path, site_url: str, static_only: bool) -> None:
        self.data_root = data_root
        self.site_url = site_url  # alarm descriptions in the world link to the pages
        self.checker = StaticChecker(aws_cli)
        self.sandbox: Sandbox | None = None
        self.seeded: set[str] = set()
        self.dirty = False
        self.seed_seconds = 0.0
        if not static_only:
            self.sandbox = Sandbox(aws_cli)
            self.sandbox.start()

    def close(self) -> None:
        self.checker.close()
        if self.sandbox is not None:
            self.sandbox.close()

    def world(self, env: str) -> None:
        """Make sure env's world is seeded and untouched by an earlier state-changing command."""
        assert self.sandbox is not None
        if self.dirty:
            self.sandbox.reset()
            self.seeded.clear()
            self.dirty = False
        if env not in self.seeded:
            start = time.perf_counter()
            creds = self.sandbox.call(
                "runbook.world:seed",
                data_root=str(self.data_root),
                env=env,
                site_url=self.site_url,
            )
            self.sandbox.set_credentials(EnvCredentials(**creds))
            self.seeded.add(env)
            self.seed_seconds += time.perf_counter() - start

    def check(self, p: Plan, s: Snippet, static_only: bool) -> Result:
        base = Result(s.page, s.line, s.env, "static", "passed", s.text, origin=s.origin)
        text = p.runnable_text(s)
        start = time.perf_counter()
        calls: list[AwsCall] = []
        if s.lang == "python":
            problems = self.checker.check_python(text)
        else:
            problems, calls = self.checker.check_shell(text)
        base.static_seconds = time.perf_counter() - start
        base.aws_calls = len(calls)
        if problems:
            base.status = "failed"
            base.message = "\n".join(f"line {s.line + pr.line}: {pr.message}" for pr in problems)
            return base
        if static_only:
            return base
        ann = s.annotation
        mutating = _mutates(s, calls)
        self.world(s.env)
        assert self.sandbox is not None
        result = self.sandbox.run(s.lang, text, s.env, timeout=ann.timeout, stream=ann.stream)
        if mutating:
            self.dirty = True
        verdict = judge(result, ann)
        base.tier = "exec"
        base.status = verdict.status
        base.message = verdict.message
        base.seconds = result.seconds
        return base


# ------------------------------------------------------------------ the whole run


def _skip_reason(s: Snippet) -> str | None:
    if s.annotation.skip:
        return s.annotation.skip
    if not s.executable:
        return f"not executable: language '{s.lang}'"
    return None


def run(p: Plan, *, static_only: bool = False, jobs: int = 0, aws_cli: str | None = None) -> list[Result]:
    """Every snippet's result, in page order. Lanes run in parallel threads (one sandbox each)."""
    cli = find_aws_cli_v2(aws_cli or os.environ.get("RUNBOOK_AWS_CLI"))
    results: dict[int, Result] = {}
    todo: list[tuple[int, Snippet]] = []
    for i, s in enumerate(p.snippets):
        reason = _skip_reason(s)
        if reason:
            results[i] = Result(s.page, s.line, s.env, "extract", "skipped", s.text, reason, s.origin)
        else:
            todo.append((i, s))
    # Read-only blocks first, so a lane resets its world only for the state-changing tail.
    todo.sort(key=lambda item: (bool(item[1].annotation.mutates), item[0]))
    work: queue.Queue[tuple[int, Snippet]] = queue.Queue()
    for item in todo:
        work.put(item)
    lanes_wanted = max(1, min(jobs or os.cpu_count() or 1, len(todo) or 1))
    errors: list[BaseException] = []

    def lane_main() -> None:
        try:
            lane = Lane(cli, p.catalog.root, p.site_url, static_only)
        except Exception as exc:  # noqa: BLE001 - reported as a gate error below
            errors.append(exc)
            return
        try:
            while True:
                try:
                    i, s = work.get_nowait()
                except queue.Empty:
                    return
                results[i] = lane.check(p, s, static_only)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            lane.close()

    threads = [threading.Thread(target=lane_main, daemon=True) for _ in range(lanes_wanted)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise GateError(f"the gate could not run: {type(errors[0]).__name__}: {errors[0]}")
    return [results[i] for i in sorted(results)]


def summary(results: Sequence[Result]) -> dict[str, int]:
    counts = Counter(r.status for r in results)
    return {s: counts.get(s, 0) for s in ("passed", "failed", "skipped", "xfailed", "xpassed")}


def summary_line(counts: dict[str, int]) -> str:
    # xfailed is "failed as the data says it must" (counted passed); xpassed is a failure.
    passed = counts["passed"] + counts["xfailed"]
    failed = counts["failed"] + counts["xpassed"]
    return f"{passed} passed, {failed} failed, {counts['skipped']} skipped"


def write_report(path: Path, results: Sequence[Result], extra: dict[str, object]) -> None:
    data = {
        "results": [
            {k: v for k, v in asdict(r).items() if k in REPORT_FIELDS}
            for r in results
        ],
        "summary": {**summary(results), **extra},
    }
    write_atomic(path, json.dumps(data, indent=2) + "\n")


def main(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    try:
        p = plan(args.mkdocs, args.docs, args.envs, args.pages)
        results = run(p, static_only=args.static_only, jobs=args.jobs)
    except GateError as exc:
        print(f"runbook verify: {exc}", file=sys.stderr)
        return 2
    except _BuildFailed as exc:
        print(f"runbook verify: the site did not build: {exc}", file=sys.stderr)
        return 1
    for r in results:
        if r.status != "passed":
            print(r.line_text())
    counts = summary(results)
    total = time.perf_counter() - start
    if args.report:
        write_report(args.report, results, {"seconds": round(total, 2), "build_seconds": round(p.build_seconds, 2)})
    print(f"{counts['xfailed']} xfailed, {counts['xpassed']} xpassed; {len(results)} blocks in {total:.1f} s")
    print(summary_line(counts))
    return 1 if counts["failed"] or counts["xpassed"] else 0
