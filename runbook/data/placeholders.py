"""`{name}` placeholders: environment values substituted per environment, operator inputs shown as <name>."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runbook.data.model import Catalog, Environment, Resource

# `{name}` or `{resource.attr}`; not `${VAR}` (bash), not `{"json": ...}`, not `{{ jinja }}`.
PLACEHOLDER = re.compile(r"(?<![$\w{])\{([A-Za-z][A-Za-z0-9_-]*(?:\.[a-z_]+)?)\}(?!\})")
# How an operator input looks once rendered (an input's slug in angle brackets): what the
# engineer must replace.
FILL_IN = re.compile(r"<([a-z][a-z0-9]*(?:-[a-z0-9]+)*)>")
# Text that must never reach a reader or a shell: anything shaped like a placeholder (a name
# the data does not know, too), and template syntax that was not rendered.
PLACEHOLDER_SHAPE = re.compile(r"(?<![$\w{\\])\{([A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\}(?!\})")
TEMPLATE = re.compile(r"\{\{.*?\}\}|\{%.*?%\}")
# awk programs such as '{print}' and '{next}' look like placeholders and are not.
NOT_PLACEHOLDERS = frozenset({"print", "next"})

BUILTINS = ("env", "region", "account")

RESOURCE_ATTRS: dict[str, dict[str, str]] = {
    "lambda_function": {
        "arn": "arn:aws:lambda:{region}:{account}:function:{name}",
        "log_group": "/aws/lambda/{name}",
    },
    "dynamodb_table": {"arn": "arn:aws:dynamodb:{region}:{account}:table/{name}"},
    "sqs_queue": {
        "arn": "arn:aws:sqs:{region}:{account}:{name}",
        "url": "https://sqs.{region}.amazonaws.com/{account}/{name}",
    },
    "log_group": {"arn": "arn:aws:logs:{region}:{account}:log-group:{name}"},
    "secret": {},
    "canary": {"log_group_prefix": "/aws/lambda/cwsyn-{name}"},
    "http_api": {},
    "s3_bucket": {"arn": "arn:aws:s3:::{name}"},
    "cloudfront_distribution": {},
    "sns_topic": {"arn": "arn:aws:sns:{region}:{account}:{name}"},
    "dashboard": {},
}


# Attributes AWS assigns at deploy time (an HTTP API's id). Only alarm dimensions may use them:
# the export turns them into a Terraform variable / CloudFormation parameter, the gate's world
# passes the ids of what it created, and commands look the id up by name instead.
DEPLOY_ATTRS: dict[str, tuple[str, ...]] = {"http_api": ("id",), "cloudfront_distribution": ("id",)}


def deploy_names(catalog: Catalog) -> dict[str, str]:
    """`{resource.attr}` names known only once deployed → the resource they belong to."""
    return {
        f"{rname}.{attr}": rname
        for rname, res in catalog.resources.items()
        for attr in DEPLOY_ATTRS.get(res.type, ())
    }


def deploy_variable(name: str) -> str:
    """The variable a deploy-time name becomes in exported definitions: api.id → api_id."""
    return name.replace(".", "_")


def find(text: str) -> Iterator[re.Match[str]]:
    return PLACEHOLDER.finditer(text)


def leftovers(text: str) -> Iterator[tuple[int, int, str]]:
    """(line, column, text) of every unresolved placeholder or template text, 1-based."""
    for lineno, line in enumerate(text.splitlines(), 1):
        hits = [*TEMPLATE.finditer(line), *PLACEHOLDER_SHAPE.finditer(line)]
        for m in sorted(hits, key=lambda m: m.start()):
            if m.re is TEMPLATE or m.group(1) not in NOT_PLACEHOLDERS:
                yield lineno, m.start() + 1, m.group(0)


def _fill(text: str, values: dict[str, str]) -> str:
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def resource_values(name: str, res: Resource, base: dict[str, str]) -> dict[str, str]:
    resolved = _fill(res.name, base)
    out = {name: resolved, f"{name}.name": resolved}
    for attr, pattern in RESOURCE_ATTRS[res.type].items():
        out[f"{name}.{attr}"] = _fill(pattern, {**base, "name": resolved})
    return out


def env_scope(catalog: Catalog, env: Environment) -> dict[str, str]:
    """Every environment placeholder's value in `env`."""
    base = {"env": env.name, "region": env.region, "account": env.account}
    base.update({k: str(v) for k, v in env.values.items()})
    scope = dict(base)
    for name, res in catalog.resources.items():
        scope.update(resource_values(name, res, base))
    return scope


def substitute(text: str, scope: dict[str, str], fill_in: Callable[[str], str]) -> str:
    """Replace environment placeholders by their value and operator inputs by `fill_in(name)`.

    Names were checked at load time, so an unknown one here is a programming error.
    """

    def one(m: re.Match[str]) -> str:
        name = m.group(1)
        if name in scope:
            return scope[name]
        return fill_in(name)

    return PLACEHOLDER.sub(one, text)
