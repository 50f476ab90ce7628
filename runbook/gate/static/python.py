"""Python blocks: compiled, and boto3 clients checked against the service models.

For ``boto3.client("svc")`` (and session clients) the service name, the method names and
literal keyword arguments (names, required members, constraints) are checked. A variable is
followed only when it is bound to exactly one client, and never rebound elsewhere.
Problems are ``(line, message)`` pairs.
"""

from __future__ import annotations

import ast
import difflib

from runbook.gate.static.constraints import (
    Violation,
    available_services,
    constraint_errors,
    paginator_names,
    service_model,
)
from runbook.gate.static.shell import Finding

__all__ = ["check_python_code"]

_CLIENT_EXTRA_METHODS = frozenset({
    "can_paginate", "close", "exceptions", "generate_presigned_url", "get_paginator",
    "get_waiter", "meta", "waiter_names", "generate_presigned_post", "upload_file",
    "download_file", "upload_fileobj", "download_fileobj", "copy", "generate_db_auth_token",
    "generate_db_connect_auth_token", "generate_db_connect_admin_auth_token",
})
_SERVICE_ALIASES = {"runtime.sagemaker": "sagemaker-runtime", "runtime.lex": "lex-runtime",
                    "runtime.lex.v2": "lexv2-runtime", "models.lex": "lex-models",
                    "models.lex.v2": "lexv2-models", "mobileanalytics": "mobileanalytics"}


def _client_service(node: ast.AST) -> str | None | bool:
    """For a boto3.client("svc")-like call return "svc"; False if not such a call;
    None if it is one but the service is not a literal."""
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
        return False
    if node.func.attr != "client":
        return False
    base = node.func.value
    looks_boto = (isinstance(base, ast.Name) and (base.id in ("boto3", "session", "sess")
                                                  or "session" in base.id.lower())) or \
        (isinstance(base, ast.Call) and isinstance(base.func, ast.Attribute)
         and base.func.attr == "Session") or \
        (isinstance(base, ast.Attribute) and "session" in base.attr.lower())
    if not looks_boto:
        return False
    arg = node.args[0] if node.args else next(
        (k.value for k in node.keywords if k.arg == "service_name"), None)
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value
    return None


def check_python_code(code: str) -> list[Finding]:
    """Compile errors, and boto3 client calls checked against the service models."""
    from botocore import xform_name

    try:
        tree = ast.parse(code, "<runbook block>", "exec")
        compile(tree, "<runbook block>", "exec", dont_inherit=True)
    except SyntaxError as exc:
        return [(exc.lineno or 1, f"python: SyntaxError: {exc.msg}")]
    except ValueError as exc:  # e.g. null bytes
        return [(1, f"python: {exc}")]
    problems: list[Finding] = []

    def check_service(node: ast.Call, svc: str) -> str | None:
        svc = _SERVICE_ALIASES.get(svc, svc)
        if svc in available_services():
            return svc
        close = difflib.get_close_matches(svc, sorted(available_services()), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        problems.append((node.lineno, f"boto3: unknown service {svc!r}{hint}"))
        return None

    bound: dict[str, set[str | None]] = {}  # variable -> services assigned to it
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            svc = _client_service(node)
            if isinstance(svc, str):
                check_service(node, svc)
        value: ast.expr | None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign, ast.NamedExpr)):
            targets, value = [node.target], node.value
        else:
            continue
        svc = _client_service(value) if value is not None else False
        real = _SERVICE_ALIASES.get(svc, svc) if isinstance(svc, str) else None
        for target in targets:
            for name in (n.id for n in ast.walk(target) if isinstance(n, ast.Name)):
                ok = isinstance(target, ast.Name) and real in available_services()
                bound.setdefault(name, set()).add(real if ok else None)
    clients: dict[str, str | None] = {name: next(iter(svcs)) for name, svcs in bound.items()
               if len(svcs) == 1 and None not in svcs}
    # Names rebound elsewhere (for, with, function args...) are ambiguous.
    for node in ast.walk(tree):
        names = []
        if isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)):
            names = [n.id for n in ast.walk(node.target) if isinstance(n, ast.Name)]
        elif isinstance(node, ast.withitem) and node.optional_vars is not None:
            names = [n.id for n in ast.walk(node.optional_vars) if isinstance(n, ast.Name)]
        elif isinstance(node, ast.arg):
            names = [node.arg]
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            names = list(node.names)
        for n in names:
            if n in clients:
                clients[n] = None

    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        receiver = node.func.value
        if isinstance(receiver, ast.Name):
            svc = clients.get(receiver.id)
            label = receiver.id
        else:
            direct = _client_service(receiver)
            svc = _SERVICE_ALIASES.get(direct, direct) if isinstance(direct, str) else None
            label = "client"
            if svc not in available_services():
                svc = None
        if not svc:
            continue
        model = service_model(svc)
        if model is None:
            continue
        method = node.func.attr
        ops = {xform_name(op): op for op in model.operation_names}
        if method in _CLIENT_EXTRA_METHODS:
            if method in ("get_paginator", "can_paginate") and node.args and \
                    isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                name = node.args[0].value
                pages = paginator_names(svc)
                if name not in ops:
                    problems.append((node.lineno, f"boto3 {svc}: {label}.{method}"
                                                  f"({name!r}): no such operation"))
                elif method == "get_paginator" and pages is not None and ops[name] not in pages:
                    problems.append((node.lineno, f"boto3 {svc}: operation "
                                                  f"{name!r} cannot be paginated"))
            continue
        if method.startswith("_") or method not in ops and method in dir(object):
            continue
        if method not in ops:
            close = difflib.get_close_matches(method, sorted(ops), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            problems.append((
                node.lineno, f"boto3 {svc}: {label}.{method}() is not an operation of "
                             f"{svc}{hint}"))
            continue
        if node.args or any(k.arg is None for k in node.keywords):
            continue  # positional or **kwargs: not checked
        shape = model.operation_model(ops[method]).input_shape
        members = shape.members if shape is not None else {}
        keywords = [(k.arg, k.value) for k in node.keywords if k.arg is not None]  # all of them
        given = [name for name, _ in keywords]
        for name, expr in keywords:
            if name not in members:
                close = difflib.get_close_matches(name, list(members), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                problems.append((
                    expr.lineno if hasattr(expr, "lineno") else node.lineno,
                    f"boto3 {svc}: {label}.{method}(): unknown parameter {name!r}{hint}"))
        required = shape.required_members if shape is not None else []
        missing = [r for r in required if r not in given
                   and not members[r].metadata.get("idempotencyToken")]
        if missing:
            problems.append((
                node.lineno, f"boto3 {svc}: {label}.{method}(): missing required "
                             f"parameter{'s' if len(missing) > 1 else ''} {', '.join(missing)}"))
        for name, expr in keywords:
            if name in members:
                try:
                    literal = ast.literal_eval(expr)
                except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                    continue
                out: list[Violation] = []
                constraint_errors(members[name], literal, name, out)
                for path, what in out:
                    problems.append((node.lineno, f"boto3 {svc}: {label}."
                                                  f"{method}(): {path}: {what}"))
    return problems
