"""The execution tier of the gate: run a snippet in the sandbox and judge what it did.

An exit status alone is not proof against moto: ``lambda invoke`` answers 200 with a
``FunctionError`` and the CLI exits 0, and moto accepts some requests AWS would refuse. So a
verdict looks at the exit status, at the output for a FunctionError, and at the snippet's
``expect`` expressions (JMESPath, evaluated on the JSON the snippet printed).
"""

from __future__ import annotations

import json
import signal
from dataclasses import dataclass
from typing import Any

import jmespath
import jmespath.exceptions

from runbook.gate.sandbox.capture import KEEP_BYTES, OUTPUT_LIMIT
from runbook.gate.sandbox.isolation import RUN_LIMITS
from runbook.gate.sandbox.sandbox import RunResult
from runbook.site.annotation import Annotation

PASSED, FAILED, XFAILED, XPASSED = "passed", "failed", "xfailed", "xpassed"

_STDERR_TAIL_LINES = 5
_LINE_CHARS = 300  # of each line of stderr quoted in a verdict
_MIB = 1024 * 1024
# Signals that mean a limit of isolation.RUN_LIMITS was reached.
_LIMIT_SIGNALS = {
    signal.SIGXFSZ: f"a file grew past the limit of {(RUN_LIMITS.file_size or 0) // _MIB} MiB",
    signal.SIGXCPU: f"past the limit of {RUN_LIMITS.cpu} s of CPU time",
}


@dataclass
class Verdict:
    status: str  # passed | failed | xfailed | xpassed
    message: str  # CLI's error (last lines of stderr) / what failed / xfail reason
    result: RunResult


def judge(result: RunResult, exp: Annotation) -> Verdict:
    """What the block's run proves, given what its annotation says it must do."""
    problems = _problems(result, exp)
    if exp.xfail is not None:
        if problems:
            return Verdict(XFAILED, f"xfail ({exp.xfail}): {'; '.join(problems)}", result)
        return Verdict(XPASSED, f"expected to fail ({exp.xfail}) but passed: "
                                "remove the xfail marker", result)
    if problems:
        return Verdict(FAILED, "; ".join(problems), result)
    return Verdict(PASSED, "", result)


# -- the checks ---------------------------------------------------------------------------


def _problems(result: RunResult, exp: Annotation) -> list[str]:
    problems: list[str] = []
    if result.timed_out:
        if not exp.stream:
            problems.append(f"timed out after {result.seconds:.1f}s{_stderr_tail(result)}")
        elif not result.stdout.strip():
            problems.append(f"stream printed nothing in {result.seconds:.1f}s{_stderr_tail(result)}")
    elif result.over_limit:
        problems.append(f"stopped: wrote more than {OUTPUT_LIMIT // _MIB} MiB of output (the "
                        f"first {KEEP_BYTES // _MIB} MiB of each stream are kept)")
    elif result.rc != 0:
        problems.append(f"exit status {_exit_status(result.rc)}{_stderr_tail(result)}")
    for name, text in (("stdout", result.stdout), ("stderr", result.stderr)):
        if '"FunctionError"' in text or "FunctionError:" in text:
            problems.append(
                f"lambda invoke reported a FunctionError on {name} (the CLI exits 0 on it): "
                f"{_function_error_line(text)}"
            )
            break
    if exp.expect:
        problems.extend(_check_expect(result.stdout, exp.expect))
    return problems


def _exit_status(rc: int) -> str:
    """The exit status, and the signal behind it (bash and bubblewrap report 128 + signal)."""
    number = -rc if rc < 0 else rc - 128 if 128 < rc < 192 else 0
    try:
        sig = signal.Signals(number)
    except ValueError:
        return str(rc)
    why = _LIMIT_SIGNALS.get(sig, "")
    return f"{rc} ({sig.name}{': ' + why if why else ''})"


def _stderr_tail(result: RunResult) -> str:
    """The last lines of stderr, each shortened: a console line stays readable."""
    lines = [ln for ln in result.stderr.strip().splitlines() if ln.strip()]
    if not lines:
        return ""
    return ": " + "\n".join(_shortened(ln) for ln in lines[-_STDERR_TAIL_LINES:])


def _shortened(line: str) -> str:
    if len(line) <= _LINE_CHARS:
        return line
    return f"{line[:_LINE_CHARS]}… [{len(line) - _LINE_CHARS:,} more characters]"


def _function_error_line(text: str) -> str:
    for line in text.splitlines():
        if "FunctionError" in line:
            return line.strip()[:300]
    return ""


def json_documents(text: str) -> list[Any]:
    """Every JSON document printed on ``text``, in order (a block may run several commands)."""
    decoder = json.JSONDecoder()
    docs: list[Any] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            break
        try:
            doc, i = decoder.raw_decode(text, i)
        except json.JSONDecodeError:
            # Not JSON here (a plain line): skip to the next line and try again.
            nl = text.find("\n", i)
            if nl < 0:
                break
            i = nl + 1
            continue
        docs.append(doc)
    return docs


def _to_jmespath(expression: str) -> str:
    """Accept a simple JSON path (``$.Table.TableStatus``) as well as JMESPath."""
    expr = expression.strip()
    if expr == "$":
        return "@"
    if expr.startswith("$."):
        return expr[2:]
    if expr.startswith("$["):
        return expr[1:]
    return expr


def _is_empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _check_expect(stdout: str, expressions: tuple[str, ...]) -> list[str]:
    docs = json_documents(stdout)
    if not docs:
        return [f"expect {list(expressions)}: stdout holds no JSON"]
    problems = []
    for expression in expressions:
        try:
            compiled = jmespath.compile(_to_jmespath(expression))
        except jmespath.exceptions.JMESPathError as exc:
            problems.append(f"expect {expression!r}: not a valid JMESPath expression ({exc})")
            continue
        values = [compiled.search(doc) for doc in docs]
        if all(_is_empty(v) for v in values):
            shown = json.dumps(values[-1]) if len(values) == 1 else f"{len(docs)} JSON documents"
            problems.append(f"expect {expression!r}: empty (got {shown})")
    return problems
