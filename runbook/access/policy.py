"""The on-call IAM policies: exactly the actions the runbook's commands need, per environment.

`read` holds the Read and List actions of every command (investigation); `write` adds the
actions of the state-changing ones (resolutions). Each action is scoped to the inventory's
ARNs in that environment that match the resource types the IAM reference gives it; an action
that takes no resource-level scoping gets "*", and one whose resources the inventory does not
name (an IAM role, say) gets its ARN format with only the account and region filled in.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from runbook.access.levels import Action, action_of
from runbook.access.operations import Operation, operations
from runbook.data.model import Catalog
from runbook.data.placeholders import substitute

__all__ = ["ROLES", "Need", "needs", "policy", "resource_arns"]

ROLES = ("read", "write")

# How IAM names each inventory type's resources (and what lives under them), beyond the
# `arn` attribute placeholders.py gives: {name}, {region}, {account}, {arn} are filled in.
_TYPE_ARNS: dict[str, tuple[str, ...]] = {
    "lambda_function": ("{arn}", "{arn}:*", "arn:aws:logs:{region}:{account}:log-group:/aws/lambda/{name}",
                        "arn:aws:logs:{region}:{account}:log-group:/aws/lambda/{name}:*"),
    "dynamodb_table": ("{arn}", "{arn}/*"),
    "sqs_queue": ("{arn}",),
    "log_group": ("{arn}", "{arn}:*"),
    "secret": ("arn:aws:secretsmanager:{region}:{account}:secret:{name}-*",),  # AWS appends 6 characters
    "canary": ("arn:aws:synthetics:{region}:{account}:canary:{name}",),
    "http_api": ("arn:aws:apigateway:{region}::/apis", "arn:aws:apigateway:{region}::/apis/*"),  # id: deploy time
    "s3_bucket": ("{arn}", "{arn}/*"),
    "cloudfront_distribution": ("arn:aws:cloudfront::{account}:distribution/*",),  # id: deploy time
    "sns_topic": ("{arn}",),
    "dashboard": ("arn:aws:cloudwatch::{account}:dashboard/{name}",),
}
_VAR = re.compile(r"\\\$\\\{(\w+)\\\}")


@dataclass(frozen=True)
class Need:
    """One action a command needs in one environment."""

    action: Action
    operation: Operation
    writes: bool  # the command changes state: its actions belong to the write role


def _fill(pattern: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], pattern)


def resource_arns(cat: Catalog, env: str) -> list[str]:
    """Every ARN of the environment's inventory and alarms, as IAM names them."""
    scope = cat.scope(env)
    e = cat.env(env)
    arns: list[str] = []
    for key, res in cat.resources.items():
        values = {"name": scope[key], "region": e.region, "account": e.account, "arn": scope.get(f"{key}.arn", "")}
        arns += [_fill(p, values) for p in _TYPE_ARNS.get(res.type, ())]
    arns += [f"arn:aws:cloudwatch:{e.region}:{e.account}:alarm:{substitute(a.name, scope, str)}" for a in cat.alarms]
    return list(dict.fromkeys(arns))


def needs(blocks: Iterable[tuple[str, str]]) -> list[Need]:
    """What the blocks ((language, code) as rendered for one environment) need. Unknown calls
    are left out: they fail the gate's run as the policy's user instead."""
    from runbook.access.levels import Impact, impact

    found: list[Need] = []
    for lang, code in blocks:
        ops = operations(lang, code)
        writes = impact(ops) is not Impact.READ_ONLY
        for op in ops:
            action = action_of(op)
            if action is not None:
                found.append(Need(action, op, writes))
    return found


@functools.lru_cache(maxsize=4096)  # a few dozen ARN formats, asked for every ARN of an env
def _matcher(fmt: str, region: str, account: str) -> re.Pattern[str]:
    fixed = {"Partition": "aws", "Region": region, "Account": account}
    return re.compile(_VAR.sub(lambda m: re.escape(fixed[m.group(1)]) if m.group(1) in fixed else ".+",
                               re.escape(fmt)) + "$")


def _scoped(action: Action, arns: list[str], region: str, account: str) -> list[str]:
    if not action.resource_types:
        return ["*"]
    hits = [a for a in arns if any(_matcher(f, region, account).match(a) for f in action.resource_types)]
    if hits:
        return hits
    # Resources the inventory does not name: the account's, of the right type.
    fixed = {"Partition": "aws", "Region": region, "Account": account}
    return sorted({re.sub(r"\$\{(\w+)\}", lambda m: fixed.get(m.group(1), "*"), f) for f in action.resource_types})


def in_role(need: Need, role: str) -> bool:
    """read: the Read and List actions of every block; write: every action."""
    return role == "write" or need.action.reads


def policy(cat: Catalog, env: str, role: str, blocks: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """The least-privilege policy document of `role` ("read" or "write") in `env` for `blocks`."""
    return _document(cat, env, role, needs(blocks))


def _document(cat: Catalog, env: str, role: str, found: list[Need]) -> dict[str, Any]:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    e = cat.env(env)
    arns = resource_arns(cat, env)
    chosen = {n.action.name: n.action for n in found if in_role(n, role)}
    by_resources: dict[tuple[str, ...], list[str]] = {}
    for name in sorted(chosen):
        by_resources.setdefault(tuple(_scoped(chosen[name], arns, e.region, e.account)), []).append(name)
    statements = []
    for i, (resources, actions) in enumerate(sorted(by_resources.items(), key=lambda kv: kv[1])):
        statements.append({"Sid": f"Runbook{role.capitalize()}{i + 1}", "Effect": "Allow",
                           "Action": actions, "Resource": list(resources)})
    return {"Version": "2012-10-17", "Statement": statements}


def render(document: dict[str, Any], env: str, role: str, fmt: str) -> str:
    """The policy as plain JSON, Terraform JSON (aws_iam_policy_document) or CloudFormation."""
    name = f"kanjona-{env}-oncall-{role}"
    if fmt == "json":
        return json.dumps(document, indent=2) + "\n"
    if fmt == "terraform":
        statements = [{"sid": s["Sid"], "effect": "Allow", "actions": s["Action"], "resources": s["Resource"]}
                      for s in document["Statement"]]
        block = {"data": {"aws_iam_policy_document": {name.replace("-", "_"): {"statement": statements}}}}
        return json.dumps(block, indent=2) + "\n"
    if fmt == "cloudformation":
        logical = "".join(p.capitalize() for p in re.split(r"[^A-Za-z0-9]+", name))
        template = {
            "AWSTemplateFormatVersion": "2010-09-09",
            "Description": f"The on-call {role} policy of the Kanjona runbook in {env} (runbook iam-policy)",
            "Resources": {logical: {"Type": "AWS::IAM::ManagedPolicy",
                                    "Properties": {"ManagedPolicyName": name, "PolicyDocument": document}}},
        }
        return json.dumps(template, indent=2) + "\n"
    raise ValueError(f"unknown format {fmt!r}")


# ------------------------------------------------------------------ the same policy, as moto checks it


def _moto_names(op: Operation, action: Action) -> list[str]:
    """The action strings moto's access control compares for `op`: the request's signing name
    and the operation (monitoring:DescribeAlarms, apigateway:GetApis, lambda:Invoke), or the
    path moto reads the action from (xray:TraceSummaries); S3 uses IAM's own names."""
    from runbook.access.operations import service_model

    if op.service == "s3":
        return [action.name]
    model = service_model(op.service)
    signing = model.signing_name if model is not None else op.service
    names = [f"{signing}:{op.name}"]
    uri = model.operation_model(op.name).http.get("requestUri", "") if model is not None and op.name else ""
    segment = uri.strip("/").split("/")[0].split("?")[0]
    if segment and "{" not in segment:
        names.append(f"{signing}:{segment}")
    return names


# Services whose requests moto checks against a real resource ARN, and the request member that
# names it; for every other request it checks "*", which a scoped Resource never matches.
MOTO_SCOPES = {"sqs": "QueueUrl", "s3": "Bucket"}


def _moto_scoped(op: Operation) -> bool:
    from runbook.access.operations import service_model

    member = MOTO_SCOPES.get(op.service)
    model = service_model(op.service)
    if member is None or model is None or op.name is None:
        return False
    shape = model.operation_model(op.name).input_shape
    return shape is not None and member in shape.members


def moto_policy(cat: Catalog, env: str, role: str, blocks: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """`policy` in the names moto's IAM access control checks: the same actions (and only
    them), scoped to ARNs where moto compares ARNs (SQS and S3 requests naming their queue or
    bucket), "*" elsewhere."""
    found = needs(blocks)  # the blocks are read once, for both the policy and its moto names
    document = _document(cat, env, role, found)
    scoped = {a: s["Resource"] for s in document["Statement"] for a in s["Action"]}
    statements = []
    for need in found:
        if not in_role(need, role) or need.action.name not in scoped:
            continue
        resources = scoped[need.action.name] if _moto_scoped(need.operation) else ["*"]
        statements.append({"Effect": "Allow", "Action": _moto_names(need.operation, need.action),
                           "Resource": resources})
    unique = list({json.dumps(s, sort_keys=True): s for s in statements}.values())
    return {"Version": "2012-10-17", "Statement": unique or [{"Effect": "Deny", "Action": "*", "Resource": "*"}]}


def denied_action(message: str, blocks: Iterable[tuple[str, str]]) -> str | None:
    """The IAM action behind moto's "is not authorized to perform: X" in `message`."""
    m = re.search(r"not authorized to perform:? ([\w-]+:[\w*-]+)", message)
    if m is None:
        return None
    for need in needs(blocks):
        if m.group(1) in _moto_names(need.operation, need.action):
            return need.action.name
    return m.group(1)
