"""The verification gate: render the site, take every code block, check it statically, run it on moto."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import queue
import signal
import sys
import tempfile
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from runbook.access.check import describe
from runbook.access.levels import Impact, impact
from runbook.access.operations import Operation, operations
from runbook.access.policy import ROLES, denied_action, moto_policy
from runbook.access.state import probes, state_difference
from runbook.data import disk_cache
from runbook.data.load import kept_file, load_cached
from runbook.data.model import Catalog
from runbook.data.placeholders import substitute
from runbook.errors import GateError, shown_path
from runbook.export.fsio import write_atomic
from runbook.gate import reports
from runbook.gate.cache import Cache
from runbook.gate.sandbox.sandbox import EnvCredentials, Sandbox
from runbook.gate.snippets import Snippet, extract_dir
from runbook.gate.static.checker import AwsCall, StaticChecker, StaticProblem
from runbook.gate.static.cli import asked_for, find_aws_cli_v2
from runbook.gate.verdict import FAILED, PASSED, Verdict, judge
from runbook.site import build
from runbook.site.annotation import AnnotationError
from runbook.site.status import block_digest

__all__ = ["GateError", "Plan", "Result", "plan", "run"]

# What the JSON report keeps of each result (timings vary from run to run).
REPORT_FIELDS = ("page", "line", "env", "tier", "status", "command", "message", "origin", "impact", "digest")

PROJECT = Path(__file__).resolve().parents[2]

# How long an interrupted run waits for its lanes to close before it gives up on them.
CLOSE_GRACE = 5.0


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
    zsh: bool = False  # also run under zsh, macOS's shell
    impact: str = ""  # "read-only" | "state-changing" | "deleting" (IAM access levels of its calls)
    code_at: str | None = None  # where the block's code starts in runbook_data (file:line:col)
    digest: str = ""  # the block as rendered for its environment (runbook.site.status): the site's key
    cached: bool = False  # taken from the verification cache (runbook.gate.cache), not run this time
    block_line: int = 0  # the line within the block of the first static problem (0: none)

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

    def close(self) -> None:
        """Remove the rendered site (idempotent)."""
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


# ------------------------------------------------------------------ rendering


class _BuildFailed(Exception):
    """The site did not build: a user error (bad page, dangling link), reported with exit 1."""


def plan(
    mkdocs_yml: Path = PROJECT / "mkdocs.yml",
    docs_dir: Path | None = None,
    envs: Sequence[str] | None = None,
    pages: Sequence[str] | None = None,
    on_build: OnBuild | None = None,
) -> Plan:
    """Render the site and extract every block for the chosen environments and pages.

    ``on_build(data_root, site_url, catalog)`` is called first when the site has to be built
    (the rendered blocks were not kept for these files), so that lanes can start beside the
    build (EarlyLanes); ``catalog`` is resolved once the data is loaded.

    A selection that leaves nothing to check is a GateError (exit 2), never an empty green:
    a ``docs_dir`` whose own pages (not the generated alarm pages) hold no executable block,
    a page glob that matches no page, or environments and pages that select no executable block.
    """
    data_root = mkdocs_yml.resolve().parent / "runbook_data"
    # The site's own pages are named as in the repository; another folder as given.
    shown = "docs/" if docs_dir is None else shown_path(docs_dir) + "/"
    digest = _plan_key(data_root, mkdocs_yml, docs_dir, shown)
    kept = disk_cache.get(data_root, digest, "plan") if digest else None
    if not (isinstance(kept, tuple) and len(kept) == 3):
        kept = None
    site_url = build.site_url(mkdocs_yml)
    loaded: Future[Catalog] = Future()
    tmp = tempfile.TemporaryDirectory(prefix="runbook-gate-")
    building: build.Building | None = None
    try:
        if kept is None and on_build is not None:
            on_build(data_root, site_url, loaded)
        catalog = load_cached(data_root)
        loaded.set_result(catalog)
        if kept is None:  # after the data's loading: the build's child takes the catalog it kept
            building = build.start(mkdocs_yml, Path(tmp.name), docs_dir=docs_dir, markdown_only=True)
        known = [e.name for e in catalog.environments]
        for env in envs or ():
            if env not in known:
                raise GateError(f"unknown environment '{env}' (known: {', '.join(known)})")
        snippets, rendered, seconds = _rendered(catalog, known, shown, digest, kept, building)
        return _chosen(tmp, catalog, site_url, docs_dir, shown, snippets, rendered, seconds, envs, pages)
    except BaseException as exc:
        if not loaded.done():  # lanes waiting for the catalog get what stopped the plan
            loaded.set_exception(exc)
        if building is not None:
            building.stop()
        tmp.cleanup()
        raise


# Called by plan when the site has to be built: (data_root, site_url, the catalog once loaded).
OnBuild = Callable[[Path, str, "Future[Catalog]"], None]


def _runnable(s: Snippet) -> bool:
    return _skip_reason(s) is None


def _matches(page: str, pattern: str) -> bool:
    return fnmatch(page, pattern) or fnmatch(page, f"*{pattern}")


def _chosen(
    tmp: tempfile.TemporaryDirectory[str],
    catalog: Catalog,
    site_url: str,
    docs_dir: Path | None,
    shown: str,
    snippets: list[Snippet],
    rendered: list[str],
    seconds: float,
    envs: Sequence[str] | None,
    pages: Sequence[str] | None,
) -> Plan:
    if docs_dir is not None:
        own = {f"{shown}{f.relative_to(docs_dir).as_posix()}" for f in Path(docs_dir).rglob("*.md")}
        if not any(s.page in own and _runnable(s) for s in snippets):
            raise GateError(f"no executable block in {shown_path(docs_dir)}")
    for pattern in pages or ():
        if not any(_matches(page, pattern) for page in rendered):
            few = ", ".join(rendered[:5]) + (", ..." if len(rendered) > 5 else "")
            raise GateError(f"--page {pattern!r} matches no page (pages: {few or 'none'})")
    chosen = [
        s
        for s in snippets
        if (not envs or s.env in envs) and (not pages or any(_matches(s.page, p) for p in pages))
    ]
    if not any(_runnable(s) for s in chosen):
        selection = [f"--env {e}" for e in envs or ()] + [f"--page {p!r}" for p in pages or ()]
        raise GateError(f"no executable block selected by {' '.join(selection) or 'the site'}")
    return Plan(chosen, catalog, seconds, site_url, tmp)


def _plan_key(data_root: Path, mkdocs_yml: Path, docs_dir: Path | None, shown: str) -> str:
    """The key the rendered blocks are kept on disk by (runbook.data.disk_cache): the project's
    files, code and plugins; "" when the disk cache is off."""
    project = mkdocs_yml.resolve().parent
    report = os.environ.get("RUNBOOK_REPORT", "")
    roots = [mkdocs_yml, project / "docs", project / "macros", data_root]
    if docs_dir is not None:
        roots.append(Path(docs_dir))
    if report:
        roots.append(Path(report))
    return disk_cache.inputs_key(*roots, extra=f"{shown}\0{report}") if disk_cache.enabled() else ""


def _rendered(catalog: Catalog, known: list[str], shown: str, digest: str, kept: tuple[Any, ...] | None,
              building: build.Building | None) -> tuple[list[Snippet], list[str], float]:
    """Every block of the built site and its pages' names, with the build's time. Kept on disk
    for the same project files, code and plugins (`kept`, by `digest`): a re-run with nothing
    changed does not build again (what the build printed is printed again)."""
    if kept is not None:
        output, snippets, rendered = kept
        if output:
            print(output, file=sys.stderr)
        return snippets, rendered, 0.0
    assert building is not None
    built = building.wait()
    if built.output:
        print(built.output, file=sys.stderr)
    if not built.ok:
        raise _BuildFailed(built.output.splitlines()[-1] if built.output else f"exit status {built.returncode}")
    try:
        snippets = extract_dir(built.rendered_dir, shown, known, catalog.default_env.name)
    except AnnotationError as exc:  # a bad marker, an unclosed fence
        raise _BuildFailed(str(exc)) from None
    rendered = sorted(f"{shown}{f.relative_to(built.rendered_dir).as_posix()}"
                      for f in built.rendered_dir.rglob("*.md"))
    if digest:
        disk_cache.put(catalog.root, digest, (built.output, snippets, rendered), "plan")
    return snippets, rendered, built.seconds


# ------------------------------------------------------------------ one lane: a checker and a sandbox


def block_operations(p: Plan, s: Snippet, calls: Iterable[AwsCall] = ()) -> list[Operation]:
    """The API operations of a block as rendered, and those its expansion showed (a command held
    in a variable): the text's unknown ones stay, so a block is never read-only by guesswork."""
    ops = operations(s.lang, p.runnable_text(s))
    seen = {(op.service, op.name) for op in ops}
    for call in calls:
        service = {"s3api": "s3"}.get(call.service or "", call.service or "")
        if (service, call.operation) not in seen:
            seen.add((service, call.operation))
            ops.append(Operation(service, call.operation, 0, "aws " + " ".join(call.argv[:2])))
    return ops


def policy_blocks(p: Plan, env: str) -> list[tuple[str, str]]:
    """(language, code) of every block the gate runs in `env`, undos included: what the
    on-call policies are made from (runbook.access.policy)."""
    blocks = []
    for s in p.snippets:
        if s.env == env and _skip_reason(s) is None:
            blocks.append((s.lang, p.runnable_text(s)))
            if s.undo is not None:
                blocks.append((s.undo.lang, p.runnable_text(s.undo)))
    return blocks


def _mutates_problem(s: Snippet, ops: list[Operation], effect: Impact) -> str | None:
    """A hand-written page's `mutates` marker that the block's calls contradict."""
    said = s.annotation.mutates
    if said is None or said == (effect is not Impact.READ_ONLY):
        return None
    calls = ", ".join(describe(op) for op in ops) or "no AWS call"
    return f"the block says mutates: {str(said).lower()} but it is {effect.label}: {calls}; remove `mutates`"


def _readable(data_root: Path) -> list[Path]:
    """What a lane's sandbox reads of the project: the data, and the folder its catalog is kept
    in (runbook.data.load.kept_file: the sandbox does not load the data again)."""
    kept = disk_cache.folder(data_root)
    try:
        kept.mkdir(parents=True, exist_ok=True)
    except OSError:  # a read-only checkout: the sandbox loads the data itself
        return [data_root]
    return [data_root, kept]


class Lane:
    """A static checker and (unless static-only) one sandbox with its own moto world.

    Nothing starts before :meth:`start`, so that a lane can be known (and aborted) before its
    processes exist.
    """

    def __init__(self, aws_cli: str, data_root: Path, site_url: str, static_only: bool,
                 policies: dict[str, dict[str, dict[str, object]]] | None = None) -> None:
        self.aws_cli = aws_cli
        # env → role → the on-call policy as moto checks it: blocks run as that role's user.
        self.policies = policies or {}
        self.creds: dict[str, dict[str, EnvCredentials]] = {}
        self.role: dict[str, str] = {}
        self.data_root = data_root
        self.site_url = site_url  # alarm descriptions in the world link to the pages
        self.checker: StaticChecker | None = None
        self.sandbox: Sandbox | None = None if static_only else Sandbox(aws_cli, readable=_readable(data_root))
        self.seeded: set[str] = set()
        # Worlds seeded before the policies were known, without on-call users yet (preseed).
        self.preseeded: dict[str, EnvCredentials] = {}
        self.dirty = False
        self.seed_seconds = 0.0  # seeding and restoring worlds
        self.restores = 0
        self.aborted = False

    def start(self) -> None:
        # Every process is started from this thread (each dies with the thread that started
        # it: bubblewrap's --die-with-parent), all of them before any is waited for: the
        # checker's worker and the sandbox (~0.5 s and ~0.7 s, mostly imports) start together.
        if self.sandbox is not None:
            self.sandbox.launch()
        # Known to abort() before its worker exists: a signal during a slow start stops it too.
        self.checker = StaticChecker(self.aws_cli, start=False)
        if self.aborted:
            return
        self.checker.launch()
        if self.sandbox is not None:
            self.sandbox.start()
        self.checker.start()

    def close(self) -> None:
        if self.checker is not None:
            self.checker.close()
        if self.sandbox is not None:
            self.sandbox.close()

    def abort(self) -> None:
        """From another thread: stop this lane's processes now; its request in flight fails."""
        self.aborted = True
        if self.sandbox is not None:
            self.sandbox.kill()
        if self.checker is not None:
            self.checker.kill()

    def world(self, env: str) -> None:
        """Make sure env's world is seeded and untouched by an earlier state-changing command.

        The seeded worlds are kept (Sandbox.freeze): after a state change they are restored, in
        the same time at any size, instead of seeded again; a new environment is seeded into
        the kept worlds, which are then kept anew."""
        assert self.sandbox is not None
        if env in self.seeded:
            if self.dirty:
                start = time.perf_counter()
                self.sandbox.restore()
                self.restores += 1
                self.seed_seconds += time.perf_counter() - start
            self.dirty = False
            return
        if self.seeded:
            self.sandbox.thaw()  # the kept worlds, without what ran in them since
        self.dirty = False
        start = time.perf_counter()
        # Seeding is the world's own doing: no access control for it.
        self.sandbox.call("runbook.world.oncall:set_auth", count="inf")
        operator = self.preseeded.pop(env, None) or self._seed(env)
        self.creds[env] = {"operator": operator}
        if self.policies:
            keys = self.sandbox.call("runbook.world.oncall:seed_oncall", data_root=str(self.data_root),
                                     env=env, site_url=self.site_url, policies=self.policies[env],
                                     catalog=kept_file(self.data_root))
            for role, key in keys.items():
                self.creds[env][role] = EnvCredentials(env, operator.account, operator.region, **key)
            self.sandbox.call("runbook.world.oncall:set_auth", count="0")
        self.sandbox.set_credentials(operator)
        self.role[env] = "operator"
        self.seeded.add(env)
        self.sandbox.freeze()
        self.seed_seconds += time.perf_counter() - start

    def preseed(self, env: str) -> None:
        """Seed env's world before the on-call policies are known (while the site builds):
        :meth:`world` adds its on-call users and keeps it. Only into a lane that keeps no
        world yet: a kept world's template must not change behind it."""
        assert self.sandbox is not None
        if self.seeded or env in self.preseeded:
            return
        start = time.perf_counter()
        self.sandbox.call("runbook.world.oncall:set_auth", count="inf")
        self.preseeded[env] = self._seed(env)
        self.seed_seconds += time.perf_counter() - start

    def _seed(self, env: str) -> EnvCredentials:
        assert self.sandbox is not None
        creds = self.sandbox.call("runbook.world:seed", data_root=str(self.data_root), env=env,
                                  site_url=self.site_url, catalog=kept_file(self.data_root))
        return EnvCredentials(**creds)

    def use(self, env: str, role: str) -> None:
        """Sign env's next runs as `role`'s user (the operator when there are no policies)."""
        assert self.sandbox is not None
        if role not in self.creds.get(env, {}):
            role = "operator"
        if self.role.get(env) != role:
            self.sandbox.set_credentials(self.creds[env][role])
            self.role[env] = role

    def _denied(self, p: Plan, s: Snippet, role: str, verdict: Verdict) -> Verdict:
        """A run moto's access control refused: which action the role's policy lacks."""
        shown = verdict.result.stderr + verdict.result.stdout
        if verdict.status != FAILED or not self.policies or "not authorized to perform" not in shown:
            return verdict
        action = denied_action(shown, policy_blocks(p, s.env))
        origin = f" (from {s.origin})" if s.origin else ""
        return Verdict(FAILED, f"needs {action}, which the on-call {role} policy of {s.env} does not grant "
                               f"(runbook iam-policy --env {s.env} --role {role}){origin}: {verdict.message}",
                       verdict.result)

    def _read_state(self, env: str, probe: str) -> str | None:
        """What `probe` prints (JSON); None when it could not read the state."""
        assert self.sandbox is not None
        read = self.sandbox.run("bash", probe, env)
        return read.stdout if read.rc == 0 else None

    def _undo_verdict(self, p: Plan, undo: Snippet, state: list[str], before: list[str]) -> Verdict | None:
        """Run the undo after the command; a failure unless every probe reads as before."""
        assert self.sandbox is not None
        self.use(undo.env, "write")
        done = self.sandbox.run("bash", p.runnable_text(undo), undo.env, timeout=undo.annotation.timeout)
        self.use(undo.env, "operator")
        where = f"the undo (line {undo.line})"
        if done.rc != 0:
            return Verdict(FAILED, f"{where} failed: exit {done.rc}: {done.stderr.strip()[:300]}", done)
        for probe, was in zip(state, before, strict=True):
            now = self._read_state(undo.env, probe)
            differs = "the state could not be read back" if now is None else state_difference(was, now)
            if differs:
                return Verdict(FAILED, f"{where} did not restore the state `{probe}` reads: {differs}", done)
        return None

    def check(self, p: Plan, s: Snippet, static_only: bool) -> Result:
        assert self.checker is not None
        base = Result(s.page, s.line, s.env, "static", "passed", s.text, origin=s.origin,
                      code_at=s.annotation.code_at)
        text = p.runnable_text(s)
        start = time.perf_counter()
        calls: list[AwsCall] = []
        if s.lang == "python":
            problems = self.checker.check_python(text)
        else:
            problems, calls = self.checker.check_shell(text, portable=s.annotation.gnu_only is None)
        if s.undo is not None:  # located at its own lines
            undo_problems, _ = self.checker.check_shell(p.runnable_text(s.undo))
            problems += [StaticProblem(pr.line + s.undo.line - s.line, f"undo: {pr.message}") for pr in undo_problems]
        base.static_seconds = time.perf_counter() - start
        base.aws_calls = len(calls)
        ops = block_operations(p, s, calls)
        effect = impact(ops)
        base.impact = effect.label
        marker = _mutates_problem(s, ops, effect)
        if marker:
            problems.append(StaticProblem(1, marker))
        if problems:
            base.block_line = min(pr.line for pr in problems)
            base.status = "failed"
            base.message = "\n".join(f"line {s.line + pr.line}: {pr.message}" for pr in problems)
            return base
        if static_only:
            return base
        ann = s.annotation
        # Blocks that only read share one world; anything else (or unknown) gets a fresh one after.
        mutating = effect is not Impact.READ_ONLY
        self.world(s.env)
        assert self.sandbox is not None
        before: list[str] = []
        state: list[str] = []
        if s.undo is not None:
            state = probes(ops) or []
            if not state:
                base.status = "failed"
                base.message = (f"line {s.line}: the undo cannot be proved: no read call shows what "
                                f"{', '.join(describe(op) for op in ops)} changes")
                return base
            self.use(s.env, "operator")  # the gate's own reads, not the runbook's
            read = [self._read_state(s.env, probe) for probe in state]
            if None in read:
                base.status = "failed"
                base.message = f"line {s.line}: the undo cannot be proved: the state before could not be read " \
                               f"({state[read.index(None)]})"
                return base
            before = [r for r in read if r is not None]
        role = "write" if mutating else "read"
        self.use(s.env, role)
        result = self.sandbox.run(s.lang, text, s.env, timeout=ann.timeout, stream=ann.stream)
        if mutating:
            self.dirty = True
        verdict = self._denied(p, s, role, judge(result, ann))
        base.seconds = result.seconds
        if s.undo is not None and verdict.status == PASSED:
            verdict = self._undo_verdict(p, s.undo, state, before) or verdict
        if s.lang == "bash" and verdict.status == PASSED:
            # Pasted into macOS's shell: zsh, no rc files, in the same world (untouched, or
            # seeded afresh after a state change). Only what passed under bash can fail here.
            self.world(s.env)
            self.use(s.env, role)
            under_zsh = self.sandbox.run("zsh", text, s.env, timeout=ann.timeout, stream=ann.stream)
            if mutating:
                self.dirty = True
            zsh_verdict = self._denied(p, s, role, judge(under_zsh, ann))
            base.zsh = True
            base.seconds += under_zsh.seconds
            if zsh_verdict.status != PASSED:
                verdict = Verdict(FAILED, f"under zsh (macOS's shell): {zsh_verdict.message}", under_zsh)
        base.tier = "exec"
        base.status = verdict.status
        base.message = verdict.message
        return base


@dataclass(eq=False)
class _EarlyLane:
    """A lane of EarlyLanes: the thread it lives in, the work it is handed (None: close), and
    whether its start and early seeding are over (`warm`)."""

    lane: Lane
    thread: threading.Thread = field(default_factory=threading.Thread)
    jobs: queue.SimpleQueue[LaneJob | None] = field(default_factory=queue.SimpleQueue)
    warm: threading.Event = field(default_factory=threading.Event)


class EarlyLanes:
    """Lanes started while the site builds, when the plan was not kept (something changed, so
    something is likely to run): their processes start and each seeds one environment's world
    beside the build instead of after it.

    Each lane lives in a thread of its own from its start to its close, which then runs the
    lane's share of :func:`run` (`hand_over`): the sandbox's processes die with the thread that
    started them (bubblewrap's --die-with-parent). What a start raised is given to that work.
    """

    def __init__(self, jobs: int, static_only: bool, aws_cli: str | None = None,
                 envs: Sequence[str] | None = None) -> None:
        # One core builds the site meanwhile: a lane for each of the others (one at least).
        cpus = os.cpu_count() or 1
        self.count = max(1, min(jobs or cpus, cpus - 1))
        self.static_only = static_only
        self.aws_cli = aws_cli
        self.envs = set(envs or ())  # the environments asked for (--env); none: all
        self._lock = threading.Lock()
        self._waiting: list[_EarlyLane] = []
        self._closed = False
        self._begun: threading.Thread | None = None

    def start(self, data_root: Path, site_url: str, catalog: Future[Catalog]) -> None:
        """Start the lanes (plan's `on_build`) from a thread of their own, which first finds
        the CLI (`aws --version`, ~0.6 s): the caller goes on building. Once `catalog` is
        loaded, its environments are seeded among the lanes."""
        with self._lock:
            if self._closed or self._begun is not None:
                return
            self._begun = threading.Thread(target=self._begin, args=(data_root, site_url, catalog), daemon=True)
            self._begun.start()

    def _begin(self, data_root: Path, site_url: str, catalog: Future[Catalog]) -> None:
        # The CLI asked for is used before `aws --version` said it is a v2 (~0.6 s): run()
        # hands work only to lanes of the CLI it found (find_aws_cli_v2), and the others close.
        try:
            asked = asked_for(self.aws_cli)
            cli = asked[0] if asked is not None else find_aws_cli_v2()
        except GateError:
            return  # run() finds the CLI itself and reports why it could not
        with self._lock:
            if self._closed:
                return
            for i in range(self.count):
                early = _EarlyLane(Lane(cli, data_root, site_url, self.static_only))
                early.thread = threading.Thread(target=self._live, args=(early, catalog, i, self.count), daemon=True)
                self._waiting.append(early)
                early.thread.start()

    def _begin_ended(self) -> None:
        begun = self._begun
        if begun is not None:
            begun.join()

    def _live(self, early: _EarlyLane, catalog: Future[Catalog], i: int, n: int) -> None:
        lane, failed = early.lane, None
        try:
            lane.start()
            envs = [e.name for e in catalog.result().environments if not self.envs or e.name in self.envs]
            for env in envs[i::n] or envs[i % max(1, len(envs)):][:1]:  # until the work comes: the rest then
                if lane.sandbox is None or lane.aborted or not early.jobs.empty():
                    break
                lane.preseed(env)
        except BaseException as exc:  # noqa: BLE001 - raised in the work handed over
            failed = exc
        early.warm.set()
        job = early.jobs.get()
        if job is None:
            lane.close()
        else:
            job(lane, failed)

    def ready(self, aws_cli: str) -> int:
        """Lanes of `aws_cli` started (or starting) and not handed work yet."""
        self._begin_ended()
        with self._lock:
            return sum(early.lane.aws_cli == aws_cli for early in self._waiting)

    def hand_over(self, count: int, job: LaneJob, aws_cli: str) -> int:
        """Give `job` to up to `count` lanes of `aws_cli` (each runs it in its own thread); how
        many took it."""
        self._begin_ended()
        with self._lock:
            given = [early for early in self._waiting if early.lane.aws_cli == aws_cli][:count]
            self._waiting = [early for early in self._waiting if early not in given]
        for early in given:
            early.jobs.put(job)
        return len(given)

    def abort(self) -> None:
        with self._lock:
            for early in self._waiting:
                early.lane.abort()

    def close(self) -> None:
        """Stop and close every lane not handed work (nothing ran in them: a seed under way is
        not waited for)."""
        with self._lock:
            self._closed = True
        self._begin_ended()
        with self._lock:
            left, self._waiting = self._waiting, []
        for early in left:
            early.lane.abort()
            early.jobs.put(None)
        for early in left:
            early.thread.join()


# A lane's share of run(): the lane (started) and what its start raised.
LaneJob = Callable[["Lane", "BaseException | None"], None]


# ------------------------------------------------------------------ the whole run


def _skip_reason(s: Snippet) -> str | None:
    if s.annotation.skip:
        return s.annotation.skip
    if not s.executable:
        return f"not executable: language '{s.lang}'"
    return None


def in_shard(s: Snippet, shard: tuple[int, int] | None) -> bool:
    """Whether block `s` belongs to shard K of N: by a hash of its id, the same on every run."""
    if shard is None:
        return True
    k, n = shard
    return int(hashlib.sha256(s.id.encode()).hexdigest(), 16) % n == k - 1


#: A lane seeds a world of an environment another lane already works in only when at least this
#: many blocks are left there per such lane: a seed (1.5 s or more) costs about as much as
#: running a few blocks (0.55 s each), and the tail of an environment is its state-changing blocks.
JOIN_MIN = 8


def lanes_for(blocks: int, jobs: int, started: int = 0) -> int:
    """How many lanes run `blocks` blocks: none for none (no checker, no sandbox to start),
    at most `jobs`, and a lane more only for JOIN_MIN blocks more (its start and first seed
    cost ~4 s), unless it was `started` already (EarlyLanes)."""
    return min(max(1, jobs), max(blocks // JOIN_MIN, started, 1), blocks)


class _Work:
    """The blocks still to run, by environment, in the order given. A lane keeps to the
    environments it has a world for (a seed costs 4.2 s for a lane's first world and 1.5 s for
    each one more). When those are done it seeds one no lane has taken yet, the largest, or else
    joins the one with the most blocks left per lane (JOIN_MIN)."""

    def __init__(self, todo: Iterable[tuple[int, Snippet]]) -> None:
        self.left: dict[str, deque[tuple[int, Snippet]]] = {}
        for item in todo:
            self.left.setdefault(item[1].env, deque()).append(item)
        self.lanes: Counter[str] = Counter()  # lanes with a world of each environment
        self.lock = threading.Lock()

    def adopt(self, seeded: Iterable[str]) -> set[str]:
        """The worlds a lane seeded before it took work (EarlyLanes), counted as its own."""
        with self.lock:
            worlds = {env for env in seeded if self.left.get(env)}
            for env in worlds:
                self.lanes[env] += 1
            return worlds

    def take(self, worlds: set[str]) -> tuple[int, Snippet] | None:
        """The next block for a lane that has a world of ``worlds`` (updated), or None: no more
        for this lane."""
        with self.lock:
            env = next((e for e in sorted(worlds) if self.left.get(e)), None)
            if env is None:
                untouched = [e for e in self.left if self.left[e] and not self.lanes[e]]
                if untouched:
                    env = max(untouched, key=lambda e: (len(self.left[e]), e))
                else:
                    busy = [e for e in self.left if self.left[e]]
                    env = max(busy, key=lambda e: (len(self.left[e]) / self.lanes[e], e), default=None)
                    if env is None or len(self.left[env]) / self.lanes[env] < JOIN_MIN:
                        return None
                worlds.add(env)
                self.lanes[env] += 1
            return self.left[env].popleft()


def run(p: Plan, *, static_only: bool = False, jobs: int = 0, aws_cli: str | None = None,
        cache: Cache | None = None, shard: tuple[int, int] | None = None,
        early: EarlyLanes | None = None) -> list[Result]:
    """Every snippet's result (of the shard, if one is given), in page order. Lanes run in
    parallel threads (one sandbox each), the `early` ones first; a block the cache holds is
    not run again."""
    cli = find_aws_cli_v2(aws_cli or os.environ.get("RUNBOOK_AWS_CLI"))
    results: dict[int, Result] = {}
    todo: list[tuple[int, Snippet]] = []
    for i, s in enumerate(p.snippets):
        if not in_shard(s, shard):
            continue
        hit = cache.get(p, s) if cache is not None and _skip_reason(s) is None else None
        if hit is not None:
            results[i] = Result(s.page, s.line, s.env, command=s.text, origin=s.origin,
                                **{**hit, "cached": True})
            continue
        reason = _skip_reason(s)
        if reason:
            results[i] = Result(s.page, s.line, s.env, "extract", "skipped", s.text, reason, s.origin,
                                impact=impact(block_operations(p, s)).label if s.executable else "")
        else:
            todo.append((i, s))
    # Read-only blocks first, so a lane resets its world only for the state-changing tail.
    todo.sort(key=lambda item: (impact(block_operations(p, item[1])) is not Impact.READ_ONLY, item[0]))
    work = _Work(todo)
    # Every block runs as the on-call user of its role, holding only `runbook iam-policy`'s
    # policy (as moto checks it): a permission the policy lacks fails the block.
    envs = sorted({s.env for _, s in todo if s.env in {e.name for e in p.catalog.environments}})
    blocks = {} if static_only else {env: policy_blocks(p, env) for env in envs}
    policies = {env: {role: moto_policy(p.catalog, env, role, blocks[env]) for role in ROLES} for env in blocks}
    lanes_wanted = lanes_for(len(todo), jobs or os.cpu_count() or 1, early.ready(cli) if early is not None else 0)
    errors: list[BaseException] = []
    lanes: list[Lane] = []
    stopping = threading.Event()
    registry = threading.Lock()
    # The main thread waits on this, not in Thread.join: a signal that interrupts a join makes
    # CPython 3.11 mark the joined thread stopped while it still runs, and the grace below
    # would then not wait for that lane to remove its folders.
    ended = threading.Semaphore(0)

    def lane_main(taken: Lane | None = None, failed: BaseException | None = None) -> None:
        try:
            lane_work(taken, failed)
        finally:
            ended.release()

    def lane_work(taken: Lane | None, failed: BaseException | None) -> None:
        with registry:
            lane = taken or Lane(cli, p.catalog.root, p.site_url, static_only)
            lane.policies = policies
            lanes.append(lane)
            if stopping.is_set():
                lane.abort()
        try:
            if failed is not None:
                raise failed
            if taken is None:
                lane.start()
            worlds = work.adopt(lane.preseeded)  # the environments this lane has seeded
            while not stopping.is_set():
                item = work.take(worlds)
                if item is None:
                    return
                i, s = item
                results[i] = lane.check(p, s, static_only)
                if cache is not None:
                    cache.put(p, s, results[i])
        except Exception as exc:  # noqa: BLE001 - reported as a gate error below
            errors.append(exc)
        finally:
            lane.close()

    handed = early.hand_over(lanes_wanted, lane_main, cli) if early is not None else 0
    threads = [threading.Thread(target=lane_main, daemon=True) for _ in range(lanes_wanted - handed)]
    done, started = 0, handed
    try:
        for t in threads:
            t.start()
            started += 1
        while done < lanes_wanted:
            ended.acquire()
            done += 1
    except BaseException:  # interrupted (see main): stop every lane now, let each one clean up
        with registry:
            stopping.set()
        for lane in lanes:
            lane.abort()
        deadline = time.monotonic() + CLOSE_GRACE
        while done < started and ended.acquire(timeout=max(0.0, deadline - time.monotonic())):
            done += 1
        raise
    if errors:
        raise GateError(f"the gate could not run: {type(errors[0]).__name__}: {errors[0]}")
    missing = [s for i, s in todo if i not in results]
    if missing:  # a lane ended without an error it could report: never a green with blocks left out
        raise GateError(f"the gate could not run: {len(missing)} block(s) were not checked, the first "
                        f"{missing[0].page}:{missing[0].line} [{missing[0].env}]")
    for i, r in results.items():  # the key the site's status lines look results up by
        r.digest = block_digest(p.snippets[i].env, p.snippets[i].text)
    return [results[i] for i in sorted(results)]


def summary(results: Sequence[Result]) -> dict[str, int]:
    counts = Counter(r.status for r in results)
    return {s: counts.get(s, 0) for s in ("passed", "failed", "skipped", "xfailed", "xpassed")}


def summary_line(counts: dict[str, int]) -> str:
    # xfailed is "failed as the data says it must" (counted passed); xpassed is a failure.
    passed = counts["passed"] + counts["xfailed"]
    failed = counts["failed"] + counts["xpassed"]
    return f"{passed} passed, {failed} failed, {counts['skipped']} skipped"


def impact_counts(results: Sequence[Result]) -> dict[str, int]:
    """Blocks per effect, each block counted once over its environments' tabs (the worst)."""
    worst: dict[tuple[str, str, int], int] = {}
    seen: Counter[tuple[str, str, str]] = Counter()
    for r in results:
        if r.impact:
            # One command's tabs share its origin; two commands of one origin (an alarm's
            # generated first step) are told apart by their order within the environment.
            origin = r.origin or str(r.line)
            key = (r.page, origin, seen[(r.page, origin, r.env)])
            seen[(r.page, origin, r.env)] += 1
            rank = [i.label for i in Impact].index(r.impact)
            worst[key] = max(rank, worst.get(key, 0))
    found = Counter(worst.values())
    return {i.label: found.get(i.value, 0) for i in Impact}


def impact_line(results: Sequence[Result]) -> str:
    counts = impact_counts(results)
    return "commands by IAM access level: " + ", ".join(f"{n} {label}" for label, n in counts.items())


def write_report(path: Path, results: Sequence[Result], extra: dict[str, object],
                 meta: dict[str, str] | None = None) -> None:
    data = {
        "meta": meta or {},
        "results": [
            {k: v for k, v in asdict(r).items() if k in REPORT_FIELDS}
            for r in results
        ],
        "summary": {**summary(results), "impact": impact_counts(results), **extra},
    }
    write_atomic(path, json.dumps(data, indent=2) + "\n")


def tier_line(results: Sequence[Result]) -> str:
    """What was actually done, per environment: run (static then exec), static only, skipped."""
    by_env: dict[str, Counter[str]] = {}
    for r in results:
        by_env.setdefault(r.env, Counter())[r.tier] += 1
    zsh = Counter(r.env for r in results if r.zsh)
    return "; ".join(
        f"{env}: {c['exec']} run (static+exec{f', {zsh[env]} also under zsh' if zsh[env] else ''}), "
        f"{c['static']} static only, {c['extract']} skipped"
        for env, c in by_env.items()
    )


class _Interrupted(BaseException):
    """SIGINT or SIGTERM during a run (a BaseException, so that no `except Exception` eats it)."""

    def __init__(self, signame: str) -> None:
        super().__init__(signame)
        self.signame = signame


@contextmanager
def _interruptible() -> Iterator[None]:
    """SIGINT and SIGTERM raise _Interrupted in the main thread (once: later ones are ignored
    while the run cleans up); the previous handlers come back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired = False

    def handler(signum: int, frame: object) -> None:
        nonlocal fired
        if not fired:
            fired = True
            raise _Interrupted(signal.Signals(signum).name)

    sigs = (signal.SIGINT, signal.SIGTERM)
    old = {sig: signal.signal(sig, handler) for sig in sigs}
    try:
        yield
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)


def _find_cli_quietly() -> None:
    try:
        find_aws_cli_v2(os.environ.get("RUNBOOK_AWS_CLI"))
    except GateError:
        pass  # reported where the CLI is needed


def main(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    if args.report:
        # A report left from an earlier run must not look like this run's (exit 2, interrupt).
        try:
            args.report.unlink(missing_ok=True)
        except OSError as exc:
            print(f"runbook verify: cannot remove the old report {args.report}: {exc}", file=sys.stderr)
            return 2
    plans: list[Plan] = []
    cache: Cache | None = None
    versions: dict[str, str] = {}  # when, at which commit, with which CLI and moto: asked once
    # `aws --version` (~0.8 s, a process of its own) beside the plan: found once per process.
    threading.Thread(target=_find_cli_quietly, daemon=True).start()
    early = EarlyLanes(args.jobs or os.cpu_count() or 1, args.static_only, envs=args.envs)
    try:
        with _interruptible():
            try:
                p = plan(args.mkdocs, args.docs, args.envs, args.pages, on_build=early.start)
                plans.append(p)
                use_cache = not getattr(args, "no_cache", True)
                if use_cache or args.report:
                    versions = reports.meta(find_aws_cli_v2(os.environ.get("RUNBOOK_AWS_CLI")), PROJECT)
                if use_cache:
                    cache = Cache(args.cache_dir, p, versions["aws_cli"], args.static_only)
                results = run(p, static_only=args.static_only, jobs=args.jobs, cache=cache,
                              shard=getattr(args, "shard", None), early=early)
            except BaseException:
                early.abort()  # an interrupt or a failure: the lanes still starting stop now
                raise
            finally:
                early.close()
                for done in plans:
                    done.close()
    except _Interrupted as exc:
        for done in plans:
            done.close()
        print(f"runbook verify: interrupted ({exc.signame})", file=sys.stderr)
        return 2
    except GateError as exc:
        print(f"runbook verify: {exc}", file=sys.stderr)
        return 2
    except _BuildFailed as exc:
        print(f"runbook verify: the site did not build: {exc}", file=sys.stderr)
        return 1
    if getattr(args, "format", "text") == "github":  # annotations on the line to edit
        for line in reports.github_lines(results):
            print(line)
    else:
        for r in results:
            if r.status != "passed":
                print(r.line_text())
    counts = summary(results)
    total = time.perf_counter() - start
    if args.report:
        write_report(args.report, results, {"seconds": round(total, 2), "build_seconds": round(p.build_seconds, 2),
                                            "from_cache": cache.hits if cache is not None else 0}, versions)
    if getattr(args, "junit", None):
        write_atomic(args.junit, reports.junit_xml(results, total))
    summary_file = getattr(args, "summary", None) or os.environ.get("GITHUB_STEP_SUMMARY")
    if summary_file:
        with open(summary_file, "a", encoding="utf-8") as out:  # GitHub's job summary is appended to
            out.write(reports.summary_markdown(results))
    print(f"{counts['xfailed']} xfailed, {counts['xpassed']} xpassed; {len(results)} blocks in {total:.1f} s")
    if cache is not None:
        print(f"{cache.hits} result(s) from the verification cache, {len(results) - cache.hits} checked now "
              "(--no-cache runs everything)")
    print(impact_line(results))
    print(tier_line(results))
    if args.static_only:
        print("static only: nothing was executed")
    print(summary_line(counts))
    return 1 if counts["failed"] or counts["xpassed"] else 0
