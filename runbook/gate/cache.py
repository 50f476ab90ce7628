"""The verification cache: a block that has not changed is not run again.

A result is kept under a key made of everything it depends on:
- the block as it runs (its text with fill-ins resolved, its language, environment and marker,
  its undo);
- the world it runs in: the catalog's parts the world is seeded from (environments, inventory,
  operator inputs, the exported alarms) and the code of the world, the gate and the access
  classification (so a change to any of them runs everything again);
- the AWS CLI's and moto's versions, and whether the run was static only.

Only results that passed (or failed as the data says they must, xfailed) are kept: a failure
is always run again. Entries are small JSON files named by their key, written atomically.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runbook.export.fsio import write_atomic

if TYPE_CHECKING:
    from runbook.gate.run import Plan, Result
    from runbook.gate.snippets import Snippet

__all__ = ["CACHED_STATUSES", "Cache", "world_digest"]

CACHED_STATUSES = ("passed", "xfailed")
_CODE = Path(__file__).resolve().parents[1]  # runbook/
_CODE_PARTS = ("world", "gate", "access", "data")


def _code_digest() -> str:
    h = hashlib.sha256()
    for part in _CODE_PARTS:
        for path in sorted((_CODE / part).rglob("*")):
            if path.is_file() and path.suffix in (".py", ".sh", ".json"):
                h.update(path.relative_to(_CODE).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def world_digest(p: Plan) -> str:
    """What the world of every environment is made of: not the pages' commands."""
    from runbook.export.alarms import put_metric_alarm_kwargs

    cat = p.catalog
    parts: dict[str, Any] = {
        "environments": [e.model_dump(mode="json") for e in cat.environments],
        "inventory": {k: r.model_dump(mode="json") for k, r in cat.resources.items()},
        "inputs": {k: i.model_dump(mode="json") for k, i in cat.inputs.items()},
        "alarms": {e.name: put_metric_alarm_kwargs(cat, e.name, p.site_url) for e in cat.environments},
        "code": _code_digest(),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


class Cache:
    def __init__(self, folder: Path, p: Plan, aws_cli_version: str, static_only: bool) -> None:
        self.folder = folder
        self.base = {"world": world_digest(p), "aws_cli": aws_cli_version, "moto": metadata.version("moto"),
                     "static_only": static_only}
        self.hits = 0

    def key(self, p: Plan, s: Snippet) -> str:
        block = {"text": p.runnable_text(s), "lang": s.lang, "env": s.env, "annotation": asdict(s.annotation),
                 "undo": p.runnable_text(s.undo) if s.undo is not None else None, **self.base}
        return hashlib.sha256(json.dumps(block, sort_keys=True, default=str).encode()).hexdigest()

    def get(self, p: Plan, s: Snippet) -> dict[str, Any] | None:
        path = self.folder / f"{self.key(p, s)}.json"
        try:
            found: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        self.hits += 1
        return found

    def put(self, p: Plan, s: Snippet, r: Result) -> None:
        if r.status in CACHED_STATUSES:
            self.folder.mkdir(parents=True, exist_ok=True)
            kept = {k: v for k, v in asdict(r).items() if k not in ("page", "line", "env", "command", "origin")}
            write_atomic(self.folder / f"{self.key(p, s)}.json", json.dumps(kept) + "\n")
