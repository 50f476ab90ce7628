"""`runbook check`: a command's `mutates:` agrees with what its API calls do, both ways.

`mutates` is optional: without it the classification decides. Given, it must be what the IAM
access levels say, so that the data never claims that a state-changing command only reads
(or the reverse).
"""

from __future__ import annotations

from runbook.access.levels import Impact, action_of, changing, impact
from runbook.access.operations import Operation, operations
from runbook.data.model import Catalog, Command
from runbook.errors import Loc, Problem

__all__ = ["check", "describe"]


def describe(op: Operation) -> str:
    """`aws lambda update-alias` (lambda:UpdateAlias, Write)."""
    action = action_of(op)
    if action is None:
        known = f"operation {op.service}:{op.name}" if op.name else "an operation that cannot be named"
        return f"`{op.shown}` ({known}, unknown to the IAM database: counted as state-changing)"
    return f"`{op.shown}` ({action.name}, {action.level})"


def _command_problems(cmd: Command) -> list[Problem]:
    if cmd.mutates is None:
        return []
    ops = operations(cmd.lang, cmd.code)
    effect = impact(ops)
    loc = cmd.loc_of("mutates") or cmd.loc or Loc("runbook_data")
    if cmd.mutates and effect is Impact.READ_ONLY:
        calls = ", ".join(describe(op) for op in ops) or "no AWS call"
        return [Problem(loc, f"`mutates: true` but the command only reads: {calls}; remove `mutates`")]
    if not cmd.mutates and effect is not Impact.READ_ONLY:
        problems = []
        for op in changing(ops):
            at = cmd.anchor.text_at(op.offset, cmd.lang if cmd.lang == "python" else "shell") \
                if cmd.anchor is not None else loc
            problems.append(Problem(at, f"{describe(op)} changes state but the command says "
                                        f"`mutates: false` (line {loc.line}); remove `mutates`"))
        return problems
    return []


def check(cat: Catalog) -> list[Problem]:
    return [p for cmd in cat.commands() for p in _command_problems(cmd)]
