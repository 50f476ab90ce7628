"""The state a command changes, read back: how the gate proves an `undo:`.

For each state-changing call `VerbNoun` (UpdateAlias, UpdateFunctionConfiguration,
UpdateTable) the probe is the same service's read operation of that noun (GetAlias,
GetFunctionConfiguration, DescribeTable) whose required parameters the call gives, called
with the call's own values. The gate reads every probe before the command and after its
undo; the two must be equal once fields that only record *that* something changed (revision
ids, modification times, counters of changes) are left out.
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

from runbook.access.levels import action_of, changing
from runbook.access.operations import Operation, service_model

__all__ = ["probes", "state_difference"]

# Fields that change with every write, whatever was written: not part of what an undo restores.
VOLATILE = re.compile(r"(RevisionId|LastModified|LastUpdate\w*|\w*DateTime|\w*Timestamp|NumberOf\w*Today|"
                      r"ResponseMetadata|ETag)$")
_WORD = re.compile(r"[A-Z][a-z0-9]*")
_CLI_NAME = {"s3": "s3api"}


def _reads(service: str, operation: str) -> bool:
    action = action_of(Operation(service, operation, 0, ""))
    return action is not None and action.reads


def probe_operation(op: Operation) -> tuple[str, list[str]] | None:
    """(read operation, its required CLI options) that shows what `op` changes, if there is one."""
    from botocore import xform_name

    model = service_model(op.service)
    if model is None or op.name is None:
        return None
    words = _WORD.findall(op.name)
    noun = "".join(words[1:])
    given = {k for k, v in op.options if v}
    for candidate in (f"Get{noun}", f"Describe{noun}", f"Get{noun}Configuration", f"Describe{noun}s"):
        if candidate not in model.operation_names or not _reads(op.service, candidate):
            continue
        shape = model.operation_model(candidate).input_shape
        required = [xform_name(m, "-") for m in (shape.required_members if shape is not None else ())]
        if set(required) <= given and required:
            return candidate, required
    return None


def probes(ops: list[Operation]) -> list[str] | None:
    """CLI commands that read what the state-changing `ops` change; None if one has no probe."""
    from botocore import xform_name

    found: list[str] = []
    for op in changing(ops):
        probe = probe_operation(op)
        if probe is None:
            return None
        name, required = probe
        values = dict(op.options)
        argv = ["aws", _CLI_NAME.get(op.service, op.service), xform_name(name, "-")]
        for option in required:
            argv += [f"--{option}", values[option]]
        found.append(shlex.join([*argv, "--output", "json"]))
    return list(dict.fromkeys(found))


def _stable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if not VOLATILE.match(k)}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def state_difference(before: str, after: str) -> str | None:
    """None when the two probe outputs (JSON) show the same state, else what differs."""
    try:
        a, b = _stable(json.loads(before)), _stable(json.loads(after))
    except ValueError:
        return None if before == after else "the state read back is not the same text"
    if a == b:
        return None
    diffs: list[str] = []

    def walk(x: Any, y: Any, path: str) -> None:
        if isinstance(x, dict) and isinstance(y, dict):
            for k in sorted(set(x) | set(y)):
                walk(x.get(k), y.get(k), f"{path}.{k}" if path else k)
        elif x != y:
            diffs.append(f"{path}: {json.dumps(x)} before, {json.dumps(y)} after")

    walk(a, b, "")
    return "; ".join(diffs[:5]) + (f" (and {len(diffs) - 5} more)" if len(diffs) > 5 else "")
