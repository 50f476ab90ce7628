"""The AWS API operations a command calls, named from botocore's service models.

Shell: each `aws SERVICE COMMAND` of a block (words split as bash splits them, inside `$(...)`
and pipelines too, by runbook.data.portable's reader); COMMAND is the operation's name in the
CLI's spelling (`update-alias` → UpdateAlias), a waiter (`wait table-exists`), or one of the
CLI's own commands (`s3 cp`, `logs tail`) that `CLI_COMMANDS` maps to the operations they call.

Python: the methods called on what `boto3.client("svc")` / `boto3.resource("svc")` return
(followed through assignments), mapped to operations by the client's and the resource
model's method names.

Whatever cannot be named, a service or command held in a variable, a method that is no
operation, is an `Operation` whose `name` is None: callers never treat it as read-only.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from runbook.data.portable import Word, simple_commands

__all__ = ["Operation", "cli_operations", "operations", "python_operations", "service_model", "shell_operations"]


@dataclass(frozen=True)
class Operation:
    service: str  # botocore's service name ("lambda", "s3"); "" when not known
    name: str | None  # the API operation ("UpdateAlias"); None when not known
    offset: int  # where the call starts in the code
    shown: str  # how the reader sees it: "aws lambda update-alias", "logs.filter_log_events"
    # The command's options as given: {"function-name": "kanjona-dev-lead-handler"} (shell only).
    options: tuple[tuple[str, str], ...] = field(default=(), compare=False)


# The CLI's own commands (awscli/customizations): no service model names them, so what each
# calls is written here. A `cp`/`mv`/`sync` reads or writes depending on which side is s3://.
_S3_READ, _S3_WRITE = ("ListObjectsV2", "GetObject"), ("ListObjectsV2", "PutObject")
CLI_COMMANDS: dict[tuple[str, str], tuple[str, ...]] = {
    ("s3", "ls"): ("ListBuckets", "ListObjectsV2"),
    ("s3", "presign"): ("GetObject",),
    ("s3", "mb"): ("CreateBucket",),
    ("s3", "rb"): ("DeleteBucket",),
    ("s3", "rm"): ("ListObjectsV2", "DeleteObject"),
    ("s3", "website"): ("PutBucketWebsite",),
    ("logs", "tail"): ("DescribeLogGroups", "FilterLogEvents"),
}
_S3_TRANSFER = ("cp", "mv", "sync")
# Commands that call no API at all.
_LOCAL = {("configure", None), ("help", None), ("history", None), ("cloudfront", "sign")}
# Global options before SERVICE; those listed take no value.
_GLOBAL_FLAGS = {"--debug", "--no-verify-ssl", "--no-paginate", "--no-sign-request", "--no-cli-pager",
                 "--no-cli-auto-prompt", "--cli-auto-prompt"}
_CLI_SERVICE = {"s3api": "s3", "configservice": "config", "ddb": "dynamodb"}


@functools.cache
def _session() -> Any:
    import botocore.session

    return botocore.session.get_session()


@functools.cache
def service_model(service: str) -> Any:
    """botocore's model of a service (by botocore's name: "lambda", "s3"), or None for an unknown name."""
    try:
        return _session().get_service_model(service)
    except Exception:  # an unknown service name: nothing to name
        return None


@functools.cache
def _cli_names(service: str) -> dict[str, str]:
    """`update-alias` → UpdateAlias for one service."""
    from botocore import xform_name

    model = service_model(service)
    return {} if model is None else {xform_name(op, "-"): op for op in model.operation_names}


@functools.cache
def _waiters(service: str) -> dict[str, str]:
    """`table-exists` → the operation the waiter polls (DescribeTable)."""
    from botocore import xform_name

    try:
        config = _session().get_waiter_model(service)
    except Exception:  # a service without waiters
        return {}
    return {xform_name(name, "-"): config.get_waiter(name).operation for name in config.waiter_names}


def _options(words: Sequence[Word]) -> tuple[tuple[str, str], ...]:
    found: list[tuple[str, str]] = []
    for i, w in enumerate(words):
        if w.text.startswith("--") and len(w.text) > 2:
            name, eq, value = w.text[2:].partition("=")
            if not eq:
                nxt = words[i + 1] if i + 1 < len(words) else None
                value = "" if nxt is None or nxt.text.startswith("--") else nxt.text
            found.append((name, value.replace("\0", "…")))
    return tuple(found)


def cli_operations(words: Sequence[Word]) -> list[Operation]:
    """The operations of one `aws ...` command line (words from `aws` on)."""
    start = words[0].start
    i = 1
    while i < len(words) and words[i].text.startswith("--"):
        i += 1 if words[i].text in _GLOBAL_FLAGS or "=" in words[i].text else 2
    rest = list(words[i:])
    if not rest:
        return []
    svc_word, cmd_word = rest[0], rest[1] if len(rest) > 1 else None
    cli_svc = svc_word.text
    cmd = cmd_word.text if cmd_word is not None else None
    if (cli_svc, None) in _LOCAL or (cli_svc, cmd) in _LOCAL:
        return []
    shown = f"aws {cli_svc} {cmd or ''}".rstrip().replace("\0", "…")
    service = _CLI_SERVICE.get(cli_svc, cli_svc)
    if not svc_word.literal or cmd_word is None or not cmd_word.literal or service_model(service) is None:
        return [Operation("" if not svc_word.literal else service, None, start, shown)]
    options = _options(rest[2:])
    if cmd == "wait" and len(rest) > 2:
        polled = _waiters(service).get(rest[2].text)
        return [Operation(service, polled, start, f"{shown} {rest[2].text}", options)]
    names: tuple[str | None, ...]
    if cmd is not None and (cli_svc, cmd) in CLI_COMMANDS:
        names = CLI_COMMANDS[(cli_svc, cmd)]
    elif cli_svc == "s3" and cmd in _S3_TRANSFER:
        operands = [w.text for w in rest[2:] if not w.text.startswith("-")]
        names = _S3_READ if operands and operands[0].startswith("s3://") else ()
        if len(operands) > 1 and operands[1].startswith("s3://"):
            names += _S3_WRITE
        if cmd == "mv" or (cmd == "sync" and any(w.text == "--delete" for w in rest)):
            names += ("DeleteObject",)
        names = tuple(dict.fromkeys(names)) or (None,)
    elif cli_svc == "s3":
        names = (None,)  # another s3 command of the CLI's own: not known here
    else:
        names = (_cli_names(service).get(cmd or ""),)
    return [Operation(service, n, start, shown, options) for n in names]


def shell_operations(code: str) -> list[Operation]:
    """Every AWS operation a shell block calls, in order."""
    found: list[Operation] = []
    for words in simple_commands(code):
        if words and words[0].literal and words[0].text.rsplit("/", 1)[-1] == "aws":
            found += cli_operations(words)
    return found


# ------------------------------------------------------------------ Python (boto3)


@functools.cache
def _boto3_loader() -> Any:
    """A loader that also finds boto3's resource models (boto3/data), as boto3's Session does."""
    import os

    import boto3
    import botocore.loaders

    loader = botocore.loaders.create_loader()
    loader.search_paths.append(os.path.join(os.path.dirname(boto3.__file__), "data"))
    return loader


@functools.cache
def _py_names(service: str) -> dict[str, str]:
    """A client's and a resource's method names → operations (`scan` → Scan, `load` → Describe...)."""
    from botocore import xform_name

    model = service_model(service)
    if model is None:
        return {}
    names = {xform_name(op): op for op in model.operation_names}
    try:
        resources = _boto3_loader().load_service_model(service, "resources-1")
    except Exception:  # no resource model for this service
        return names
    shapes = [resources.get("service", {}), *resources.get("resources", {}).values()]
    for shape in shapes:
        for kind in ("actions", "batchActions"):
            for action, spec in shape.get(kind, {}).items():
                names.setdefault(xform_name(action), spec["request"]["operation"])
        if "load" in shape:
            names.setdefault("load", shape["load"]["request"]["operation"])
            names.setdefault("reload", shape["load"]["request"]["operation"])
    return names


# Methods of boto3 objects that are no API call of their own (the call comes later, from
# what they return, and is found there), or local helpers.
_PY_NEUTRAL = {"get_paginator", "get_waiter", "can_paginate", "close", "generate_presigned_url",
               "build_full_result", "search", "all", "filter", "limit", "page_size", "pages",
               "result_key_iters", "get", "items", "keys", "values"}
_BOTO_BASE = re.compile(r"^(boto3|session|sess|.*session.*)$", re.IGNORECASE)


def _boto_call(node: ast.AST) -> tuple[str, str | None] | None:
    """("client"|"resource", "svc" or None) for boto3.client("svc")-like calls."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("client", "resource")):
        return None
    base = node.func.value
    while isinstance(base, ast.Call):
        base = base.func
    name = base.attr if isinstance(base, ast.Attribute) else base.id if isinstance(base, ast.Name) else ""
    if not _BOTO_BASE.match(name):
        return None
    arg = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "service_name"), None)
    svc = arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else None
    return node.func.attr, svc


def _root(node: ast.AST) -> ast.AST:
    while isinstance(node, (ast.Attribute, ast.Call, ast.Subscript)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node


def python_operations(code: str) -> list[Operation]:
    """Every AWS operation a Python block calls (line offsets as in the code)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return [Operation("", None, 0, "python")]  # the static tier reports the syntax error
    starts = [0]
    for line in code.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    bound: dict[str, str | None] = {}  # variable → the service of the boto3 object it holds

    def service_of(node: ast.AST) -> tuple[bool, str | None]:
        for sub in ast.walk(node):
            made = _boto_call(sub)
            if made is not None:
                return True, made[1]
        root = _root(node)
        if isinstance(root, ast.Name) and root.id in bound:
            return True, bound[root.id]
        return False, None

    for node in ast.walk(tree):  # assignments first: a name holds a boto3 object wherever it is used
        if isinstance(node, (ast.Assign, ast.AnnAssign, ast.NamedExpr)) and node.value is not None:
            boto, svc = service_of(node.value)
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                for name in ast.walk(t):
                    if isinstance(name, ast.Name) and boto:
                        bound[name.id] = svc
        elif isinstance(node, (ast.For, ast.comprehension)):
            boto, svc = service_of(node.iter)
            for name in ast.walk(node.target):
                if isinstance(name, ast.Name) and boto:
                    bound[name.id] = svc
    found: list[Operation] = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        made = _boto_call(node)
        if made is not None:
            if made[1] is None:
                found.append(Operation("", None, _offset(starts, node), f"boto3.{made[0]}(?)"))
            continue
        boto, svc = service_of(node.func.value)
        method = node.func.attr
        if not boto or method[:1].isupper():  # sub-resources (Table, Bucket) call nothing yet
            continue
        offset = _offset(starts, node)
        if method in ("get_paginator", "get_waiter") and node.args:
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and svc:
                if method == "get_waiter":
                    from botocore import xform_name

                    op = _waiters(svc).get(xform_name(arg.value, "-"))
                else:
                    op = _py_names(svc).get(arg.value)
                found.append(Operation(svc, op, offset, f"{svc}.{arg.value}"))
            continue
        if method in _PY_NEUTRAL or method in ("paginate", "wait"):
            continue
        op = _py_names(svc).get(method) if svc else None
        found.append(Operation(svc or "", op, offset, f"{svc or '?'}.{method}"))
    return sorted(found, key=lambda o: o.offset)


def _offset(starts: list[int], node: ast.expr) -> int:
    return starts[node.lineno - 1] + node.col_offset


def operations(lang: str, code: str) -> list[Operation]:
    return list(_operations(lang, code))


# The site asks for each block's calls several times per build (caution box, tab label, counts),
# and `mkdocs serve` for every unchanged block again on each edit: parsing is the cost.
@functools.lru_cache(maxsize=8192)
def _operations(lang: str, code: str) -> tuple[Operation, ...]:
    return tuple(python_operations(code) if lang == "python" else shell_operations(code))


