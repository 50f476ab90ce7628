"""API parameters against the service models of the project's botocore.

The AWS CLI v2 validates types and required members client-side; the constraints botocore
does not enforce (enum, ``pattern``, min/max length, numeric range) are checked here, with the
models of the project's botocore, newer than the CLI's (new Lambda runtimes, instance
types...). Model patterns are Java regular expressions: :func:`_translate_java_regex` turns
the constructs Python lacks (``\\p{L}``, ``\\x{...}``...) into ranges; a pattern that cannot be
translated is not checked (conservative). Values holding the stub marker or a placeholder
are unknown and never judged.
"""

from __future__ import annotations

import difflib
import os
import re
from functools import lru_cache
from typing import Any

from runbook.data import placeholders
from runbook.gate.static.shell import MARKER

__all__ = [
    "Violation", "available_services", "check_api_params", "cli_option", "constraint_errors",
    "paginator_names", "service_model",
]

_MARKER_RE = re.compile(MARKER, re.IGNORECASE)


@lru_cache(maxsize=1)
def _loader() -> Any:
    import botocore
    from botocore.loaders import Loader

    # Only the models shipped with botocore: never ~/.aws/models, never config files.
    data = os.path.join(os.path.dirname(botocore.__file__), "data")
    return Loader(extra_search_paths=[data], include_default_search_paths=False)


@lru_cache(maxsize=1)
def available_services() -> frozenset[str]:
    return frozenset(_loader().list_available_services("service-2"))


@lru_cache(maxsize=512)
def service_model(service: str) -> Any:
    """botocore's ServiceModel of ``service`` (the project's botocore), None if unknown."""
    from botocore.model import ServiceModel

    if service not in available_services():
        return None
    return ServiceModel(_loader().load_service_model(service, "service-2"), service)


@lru_cache(maxsize=512)
def paginator_names(service: str) -> frozenset[str] | None:
    try:
        data = _loader().load_service_model(service, "paginators-1")
    except Exception:
        return None
    return frozenset(data.get("pagination", {}))


_JAVA_CLASSES = {
    "L": "a-zA-Z\u00aa\u00b5\u00ba\u00c0-\u00d6\u00d8-\u00f6\u00f8-\uffff",
    "IsAlphabetic": "a-zA-Z\u00aa\u00b5\u00ba\u00c0-\u00d6\u00d8-\u00f6\u00f8-\uffff",
    "IsLetter": "a-zA-Z\u00aa\u00b5\u00ba\u00c0-\u00d6\u00d8-\u00f6\u00f8-\uffff",
    "Alpha": "a-zA-Z", "Lower": "a-z", "Upper": "A-Z", "Ll": "a-z\u00df-\u00ff",
    "Lu": "A-Z\u00c0-\u00de", "N": "0-9\u00b2\u00b3\u00b9\u00bc-\u00be\u0660-\uffff",
    "Nd": "0-9", "Digit": "0-9", "IsDigit": "0-9", "Alnum": "a-zA-Z0-9",
    "Z": " \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000",
    "Zs": " \u00a0\u1680\u2000-\u200a\u202f\u205f\u3000", "Space": " \\t\\n\\x0b\\f\\r",
    "Punct": "!-/:-@\\[-`{-~", "Graph": "!-~", "Print": " -~", "ASCII": "\\x00-\\x7f",
    "XDigit": "0-9a-fA-F", "Cntrl": "\\x00-\\x1f\\x7f", "Blank": " \\t",
    "S": "$+<->^`|~\u00a2-\u00a9\u00ac\u00ae-\u00b1\u00b4\u00b8\u00d7\u00f7\u02c2-\uffff",
    "P": "!-#%-*,-/:;?@\\[-\\]_{}\u00a1\u00a7\u00ab\u00b6\u00b7\u00bb\u00bf\u2010-\u2027",
    "M": "\u0300-\u036f\u0483-\u0489\u0591-\u05bd",
}
# Complements that can be written as positive ranges (approximate, erring on accepting).
_JAVA_NEGATED = {"C": " -~\u00a0-\uffff\U00010000-\U0010ffff"}


def _translate_java_regex(pattern: str) -> str:
    def cls(m: re.Match[str], inside: bool) -> str:
        neg, name = m.group(1) == "P", m.group(2)
        if name.startswith("Is") and name not in _JAVA_CLASSES:
            name = name[2:]
        body = (_JAVA_NEGATED if neg else _JAVA_CLASSES).get(name)
        if body is None:
            if neg and name in _JAVA_CLASSES:
                return "" if inside else f"[^{_JAVA_CLASSES[name]}]"
            raise ValueError(name)
        return body if inside else f"[{body}]"

    out, i, depth = [], 0, 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            m = re.match(r"\\([pP])\{(\w+)\}", pattern[i:])
            if m:
                out.append(cls(m, depth > 0))
                i += m.end()
                continue
            m = re.match(r"\\x\{([0-9a-fA-F]+)\}", pattern[i:])
            if m:
                out.append(f"\\U{int(m.group(1), 16):08x}")
                i += m.end()
                continue
            nxt = pattern[i + 1]
            if nxt == "z":
                out.append("\\Z")
            elif depth > 0 and nxt in "wdsWDS" and pattern[i + 2:i + 3] == "-":
                out.append(pattern[i:i + 2] + "\\-")
                i += 3
                continue
            else:
                out.append(pattern[i:i + 2])
            i += 2
            continue
        if c == "[":
            depth += 1
        elif c == "]" and depth:
            depth -= 1
        out.append(c)
        i += 1
    return "".join(out)


@lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re.Pattern[str] | None:
    for attempt in (pattern, None):
        try:
            if attempt is None:
                attempt = _translate_java_regex(pattern)
            return re.compile(attempt)
        except (re.error, ValueError, OverflowError):
            continue
    return None  # a Java-only construct: not checked (conservative)


def _unknown(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    return any(rx.search(value) for rx in (_MARKER_RE, placeholders.PLACEHOLDER_SHAPE, placeholders.FILL_IN))


Violation = tuple[str, str]  # (parameter path, what is wrong)


def constraint_errors(shape: Any, value: Any, path: str, out: list[Violation], depth: int = 0) -> None:
    if shape is None or depth > 30 or value is None:
        return
    meta = shape.metadata
    if isinstance(value, dict) and len(value) == 1 and next(iter(value)).startswith("$"):
        if "$bytes" in value and shape.type_name == "blob":
            mx = meta.get("max")
            if mx is not None and value["$bytes"] > mx:
                out.append((path, f"length {value['$bytes']} is above the maximum {mx}"))
        return
    t = shape.type_name
    if t == "structure" and isinstance(value, dict):
        if meta.get("document"):
            return
        for name, member_value in value.items():
            member = shape.members.get(name)
            if member is not None:
                constraint_errors(member, member_value, f"{path}.{name}" if path else name,
                                   out, depth + 1)
    elif t in ("list", "map") and isinstance(value, (list, dict)):
        mx = meta.get("max")
        if mx is not None and len(value) > mx:
            out.append((path, f"{len(value)} items, the maximum is {mx}"))
        if t == "list" and isinstance(value, list):
            for i, item in enumerate(value):
                constraint_errors(shape.member, item, f"{path}[{i}]", out, depth + 1)
        elif isinstance(value, dict):
            for k, v in value.items():
                constraint_errors(shape.key, k, f"{path} key", out, depth + 1)
                constraint_errors(shape.value, v, f"{path}.{k}", out, depth + 1)
    elif t == "string" and isinstance(value, str):
        if _unknown(value):
            return
        enum = getattr(shape, "enum", None) or meta.get("enum")
        if enum and value not in enum:
            close = difflib.get_close_matches(value, enum, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            if len(enum) <= 12:
                out.append((path, f"{value!r} is not one of {', '.join(enum)}{hint}"))
            else:
                out.append((path, f"{value!r} is not one of the {len(enum)} allowed values"
                                  f"{hint or ' (' + ', '.join(enum[:6]) + ', ...)'}"))
            return
        mx, mn = meta.get("max"), meta.get("min")
        if mx is not None and len(value) > mx:
            out.append((path, f"{value[:40]!r}{'...' if len(value) > 40 else ''} is "
                              f"{len(value)} characters long, the maximum is {mx}"))
        if mn is not None and len(value) < mn:
            out.append((path, f"{value!r} is {len(value)} characters long, the minimum is {mn}"))
        pattern = meta.get("pattern")
        if pattern:
            rx = _compiled(pattern)
            if rx is not None and not rx.fullmatch(value):
                shown = f"{value[:60]!r}{'...' if len(value) > 60 else ''}"
                out.append((path, f"{shown} does not match the pattern {pattern}"))
    elif t in ("integer", "long", "double", "float") and isinstance(value, (int, float)) \
            and not isinstance(value, bool):
        mx, mn = meta.get("max"), meta.get("min")
        if mx is not None and value > mx:
            out.append((path, f"{value} is above the maximum {mx}"))
        if mn is not None and value < mn:
            out.append((path, f"{value} is below the minimum {mn}"))


def check_api_params(service: str, operation: str, params: dict[str, Any]) -> list[Violation]:
    """Constraint violations (enum, pattern, length, range) of already-typed API params,
    as (parameter path, problem) pairs. Uses the project's botocore models; unknown
    services, operations and members are skipped."""
    model = service_model(service)
    if model is None or operation not in model.operation_names:
        return []
    shape = model.operation_model(operation).input_shape
    out: list[Violation] = []
    if shape is not None and isinstance(params, dict):
        constraint_errors(shape, params, "", out)
    return out


def cli_option(member_path: str) -> str | None:
    from botocore import xform_name

    head = re.match(r"[A-Za-z0-9_]+", member_path)
    return "--" + xform_name(head.group(0), "-") if head else None
