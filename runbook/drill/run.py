"""Incident drills: for an alarm and an environment, make its scenario happen in the gate's
world, follow the alarm page as rendered for that environment, and check that its steps find
the cause and its resolution fixes it.

One drill, in order:

1. the scenario's metric data must breach the alarm as the export defines it there
   (runbook.drill.evaluate); otherwise the drill fails with the computed datapoints;
2. a freshly seeded world gets the scenario (runbook.drill.world) and the alarm goes to ALARM;
3. every investigation step's blocks run as the on-call read user, in page order, and each
   `finds:` must hold on what the step printed (step 1, "Is it still firing?", must show ALARM);
4. the named resolution's blocks run as an engineer would paste them (fill-ins from the drill),
   as the on-call user of their access level;
5. the recovery condition is read back from the world.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from runbook.access.levels import Impact, impact
from runbook.access.policy import ROLES, moto_policy
from runbook.data.model import Alarm, Catalog, Command, Drill, Finding
from runbook.data.placeholders import substitute
from runbook.errors import GateError, Loc, Problem
from runbook.gate.run import Lane, Plan, block_operations, policy_blocks
from runbook.gate.snippets import Snippet
from runbook.gate.static.cli import find_aws_cli_v2
from runbook.site.render import origin_of

from .evaluate import EvaluationError, evaluate, exported
from .findings import SHOWN, reveal, shortened

PASS, FAIL, NOT_RUN, NOT_USEFUL = "found", "failed", "not run", "not useful"


@dataclass
class Line:
    """One line of a drill's report."""

    what: str  # "alarm", "step 2", "resolution", "recovered"
    status: str  # found | failed | not run | not useful | ok
    text: str
    where: str = ""  # page:line of the block (or of the step's first block)
    origin: str = ""  # where in runbook_data to fix it


@dataclass
class DrillResult:
    alarm: str
    env: str
    scenario: str
    lines: list[Line] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return bool(self.lines) and not any(line.status == FAIL for line in self.lines)

    def failures(self) -> list[str]:
        """`page:line [env]: what: message (from origin)` for each failed line."""
        out = []
        for line in self.lines:
            if line.status == FAIL:
                where = f"{line.where} [{self.env}]" if line.where else f"{self.alarm} [{self.env}]"
                origin = f" (from {line.origin})" if line.origin else ""
                out.append(f"{where}: drill {self.alarm}: {line.what}: {line.text}{origin}")
        return out

    def problems(self) -> list[Problem]:
        """Each failure at the runbook_data line to fix (GitHub annotations)."""
        out = []
        for line in self.lines:
            if line.status == FAIL:
                where = f" ({line.where})" if line.where else ""
                out.append(Problem(origin_loc(line.origin),
                                   f"drill {self.alarm} [{self.env}]: {line.what}: {line.text}{where}"))
        return out


def origin_loc(origin: str) -> Loc:
    """`file:line` or `file:line:col` as a Loc (the data's root when there is none)."""
    parts = origin.split(":")
    numbers = [int(x) for x in parts[1:3] if x.isdigit()]
    return Loc(parts[0] or "runbook_data", *numbers) if origin else Loc("runbook_data")


def still_firing(alarm: Alarm) -> Finding:
    """What step 1 of every alarm page must show in a drill: the alarm in ALARM."""
    return Finding.model_validate({"step": 1, "jmespath": "State == 'ALARM'",
                                   "shows": "the alarm in ALARM, with the datapoints that crossed the threshold"})


def _loc(loc: Loc | None) -> str:
    return f"{loc.file}:{loc.line}" if loc else ""


# ------------------------------------------------------------------ one drill


class _Drill:
    def __init__(self, p: Plan, lane: Lane, alarm: Alarm, env: str) -> None:
        assert alarm.drill is not None
        self.p, self.lane, self.alarm, self.env = p, lane, alarm, env
        self.drill: Drill = alarm.drill
        self.result = DrillResult(alarm.id, env, alarm.drill.scenario)
        page = [s for s in p.snippets if s.env == env and s.page.endswith(f"alarms/{alarm.id}.md")]
        self.blocks: dict[str, list[Snippet]] = {}
        for s in page:
            self.blocks.setdefault(s.origin or "", []).append(s)

    def add(self, *args: str, **kwargs: str) -> Line:
        line = Line(*args, **kwargs)
        self.result.lines.append(line)
        return line

    def text(self, s: Snippet) -> str:
        """The block as the engineer pastes it in this scenario: fill-ins from the drill first."""
        scope = self.p.catalog.scope(self.env)
        text = s.text
        for name in s.fill_ins():
            value = self.drill.fill_ins.get(name)
            if value is None and (spec := self.p.catalog.inputs.get(name)) is not None:
                value = spec.sample
            if value is not None:
                text = text.replace(f"<{name}>", substitute(value, scope, lambda n: f"<{n}>"))
        return text

    def of(self, commands: Sequence[Command], origin: str | None = None) -> list[Snippet]:
        """The page's blocks (this environment) of these data commands, in page order."""
        if origin is not None:
            return self.blocks.get(origin, [])
        out: list[Snippet] = []
        for cmd in commands:
            out += self.blocks.get(origin_of(cmd) or "", [])[:1]
        return out

    def execute(self, s: Snippet) -> tuple[bool, str]:
        """Run one block as the on-call user of its access level: (exit 0, stdout or why not)."""
        assert self.lane.sandbox is not None
        role = "read" if impact(block_operations(self.p, s)) is Impact.READ_ONLY else "write"
        self.lane.use(self.env, role)
        done = self.lane.sandbox.run(s.lang, self.text(s), self.env, timeout=s.annotation.timeout,
                                     stream=s.annotation.stream)
        if done.rc != 0:
            # The end of what it said: the CLI's error follows its usage text.
            return False, f"exit {done.rc}: {shortened((done.stderr.strip() or done.stdout)[-SHOWN:])}"
        return True, done.stdout

    def world_call(self, target: str, **kwargs: object) -> dict[str, object]:
        """A drill function inside the worker, with moto's access control off meanwhile."""
        assert self.lane.sandbox is not None
        auth = bool(self.lane.policies)
        if auth:
            self.lane.sandbox.call("runbook.world.oncall:set_auth", count="inf")
        try:
            answer: dict[str, object] = self.lane.sandbox.call(
                target, data_root=str(self.p.catalog.root), env=self.env, site_url=self.p.site_url,
                alarm_id=self.alarm.id, **kwargs)
            return answer
        finally:
            if auth:
                self.lane.sandbox.call("runbook.world.oncall:set_auth", count="0")

    def run(self) -> DrillResult:
        start = time.perf_counter()
        try:
            self._run()
        finally:
            self.lane.dirty = True  # the scenario and the resolution changed the world
            self.result.seconds = time.perf_counter() - start
        return self.result

    def _run(self) -> None:
        a, drill = self.alarm, self.drill
        try:
            ev = evaluate(exported(self.p.catalog, self.env)[a.id], drill.metric_data)
        except EvaluationError as exc:
            self.add("alarm", FAIL, str(exc), origin=_loc(drill.loc_of("metric_data")))
            return
        if ev.state != "ALARM":
            self.add("alarm", FAIL, f"the scenario does not breach the alarm: {ev.describe()}",
                     origin=_loc(drill.loc_of("metric_data")))
            return
        self.add("alarm", "ok", ev.describe())
        self.lane.world(self.env)
        saved = self.world_call("runbook.drill.world:apply", reason=f"Threshold Crossed: {ev.describe()}")
        self._investigate()
        if not self._resolve():
            return
        check = self.world_call("runbook.drill.world:recovered", saved=saved.get("saved", {}))
        if check.get("ok"):
            self.add("recovered", "ok", drill.recovered.shows)
        else:
            self.add("recovered", FAIL, f"not recovered: {drill.recovered.shows} does not hold: "
                                        f"{shortened(str(check.get('answer', '')))}",
                     origin=_loc(drill.recovered.loc))

    def _investigate(self) -> None:
        a, drill = self.alarm, self.drill
        steps: list[tuple[int, list[Snippet], str]] = [(1, self.of([], origin_of(a) or ""), _loc(a.loc))]
        steps += [(n, self.of(step.commands), _loc(step.loc)) for n, step in enumerate(a.investigation, 2)]
        findings = [still_firing(a), *drill.finds]
        for number, blocks, origin in steps:
            what = f"step {number}"
            wanted = [f for f in findings if f.step == number]
            outputs: list[str] = []
            ran = False
            failed = False
            for s in blocks:
                reason = s.annotation.skip or s.annotation.xfail
                if reason:
                    self.add(what, NOT_RUN, reason, where=f"{s.page}:{s.line}")
                    continue
                ok, out = self.execute(s)
                ran = True
                if not ok:
                    failed = True
                    self.add(what, FAIL, f"the command failed in this scenario: {out}", where=f"{s.page}:{s.line}",
                             origin=s.annotation.code_at or s.origin or origin)
                    continue
                outputs.append(out)
            where = f"{blocks[0].page}:{blocks[0].line}" if blocks else ""
            if failed:
                continue
            if wanted and not ran:
                self.add(what, FAIL, "the drill expects a finding of this step, and none of its blocks runs "
                                     "against the simulated AWS", where=where, origin=origin)
                continue
            for finding in wanted:
                found = reveal(finding, "\n".join(outputs))
                self.add(what, PASS if found.ok else FAIL,
                         f"{finding.shows}: {found.detail}" if found.ok else found.detail,
                         where=where, origin=_loc(finding.loc) or origin)
            if ran and not wanted:
                self.add(what, NOT_USEFUL, "reveals nothing in this drill (no finds: for it)", where=where,
                         origin=origin)

    def _resolve(self) -> bool:
        a, drill = self.alarm, self.drill
        chosen = next((r for r in a.resolution if r.when == drill.resolution), None)
        if chosen is None:  # `runbook check` reports it at its line; a copy of the data may not have
            self.add("resolution", FAIL, f"no resolution '{drill.resolution}' on the page",
                     origin=_loc(drill.loc_of("resolution")))
            return False
        blocks = [s for s in self.of(chosen.commands) if not (s.annotation.skip or s.annotation.xfail)]
        if not blocks:
            self.add("resolution", FAIL, f"'{chosen.when}' runs no command against the simulated AWS",
                     origin=_loc(chosen.loc))
            return False
        for s in blocks:
            ok, out = self.execute(s)
            if not ok:
                self.add("resolution", FAIL, f"'{chosen.when}': the command failed: {out}",
                         where=f"{s.page}:{s.line}", origin=s.annotation.code_at or s.origin or _loc(chosen.loc))
                return False
        self.add("resolution", "ok", f"'{chosen.when}': ran {len(blocks)} command(s)",
                 where=f"{blocks[0].page}:{blocks[0].line}")
        return True


# ------------------------------------------------------------------ all of them


def drills(catalog: Catalog, alarms: Sequence[str] = (), envs: Sequence[str] = ()) -> list[tuple[Alarm, str]]:
    """(alarm, environment) of every drill selected, in catalog order."""
    known = {a.id for a in catalog.alarms}
    for wanted in alarms:
        if wanted not in known:
            raise GateError(f"unknown alarm '{wanted}' (known: {', '.join(sorted(known))})")
        if catalog.alarm(wanted).drill is None:
            raise GateError(f"alarm '{wanted}' has no drill")
    names = [e.name for e in catalog.environments]
    for env in envs:
        if env not in names:
            raise GateError(f"unknown environment '{env}' (known: {', '.join(names)})")
    return [(a, e) for a in catalog.alarms if a.drill is not None and (not alarms or a.id in alarms)
            for e in names if not envs or e in envs]


def run(p: Plan, selected: Sequence[tuple[Alarm, str]], jobs: int = 0, aws_cli: str | None = None) -> list[DrillResult]:
    """Every selected drill, each in a fresh world, over `jobs` sandboxes; in the given order."""
    cli = find_aws_cli_v2(aws_cli or os.environ.get("RUNBOOK_AWS_CLI"))
    envs = sorted({env for _, env in selected})
    policies = {env: {role: moto_policy(p.catalog, env, role, policy_blocks(p, env)) for role in ROLES}
                for env in envs}
    work: queue.Queue[tuple[int, Alarm, str]] = queue.Queue()
    for i, (alarm, env) in enumerate(selected):
        work.put((i, alarm, env))
    results: dict[int, DrillResult] = {}
    errors: list[BaseException] = []

    def lane_main() -> None:
        lane = Lane(cli, p.catalog.root, p.site_url, static_only=False, policies=policies)
        try:
            assert lane.sandbox is not None
            lane.sandbox.start()
            while True:
                try:
                    i, alarm, env = work.get_nowait()
                except queue.Empty:
                    return
                results[i] = _Drill(p, lane, alarm, env).run()
        except Exception as exc:  # noqa: BLE001 - reported as a gate error below
            errors.append(exc)
        finally:
            lane.close()

    wanted = max(1, min(jobs or os.cpu_count() or 1, len(selected)))
    threads = [threading.Thread(target=lane_main, daemon=True) for _ in range(wanted)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise GateError(f"the drills could not run: {type(errors[0]).__name__}: {errors[0]}")
    return [results[i] for i in sorted(results)]
