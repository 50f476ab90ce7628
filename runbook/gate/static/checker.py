"""Static tier of the verification gate: check runbook code blocks without AWS.

No network, no credentials, no AWS account: a shell block is syntax-checked (``bash -n``,
optionally ``shellcheck -S error``), scanned for unresolved placeholders, then *expanded*
by real bash in a sandbox where ``aws`` is a function that records its exact argv. Each
``aws`` argv is validated by the AWS CLI v2 itself, in a persistent worker process
(``runbook/awscli_v2_worker.py``) running under the CLI's own interpreter, with botocore
answering every request from a stub. The API parameters that botocore accepted are then
checked here against the constraints botocore does not enforce client-side (enum,
``pattern``, max length, numeric max), using the service models of the project's botocore,
which are newer than the CLI's (new Lambda runtimes, instance types...).

Python blocks are compiled, and ``boto3.client("svc")`` calls are checked against the
service models (service name, method name, literal keyword arguments).

``StaticChecker`` is thread-safe: requests to the worker are serialised by a lock; shell
expansions run in their own temporary directories.
"""

from __future__ import annotations

import ast
import difflib
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = [
    "AwsCall", "GateError", "StaticChecker", "StaticProblem", "find_aws_cli_v2",
    "is_read_only_operation",
]

WORKER_SCRIPT = Path(__file__).resolve().parent / "awscli" / "worker.py"
MARKER = "gatestub"  # what stubbed commands print; values containing it are unknown
_MARKER_RE = re.compile(MARKER, re.IGNORECASE)
EXPANSION_TIMEOUT = 10.0  # seconds for bash to expand one block
WORKER_TIMEOUT = 30.0  # seconds for one aws command in the worker
WORKER_START_TIMEOUT = 60.0
MAX_CALLS_PER_BLOCK = 200

READ_ONLY_PREFIXES = ("Get", "List", "Describe", "Filter", "Scan", "Query", "BatchGet",
                      "Search", "Lookup", "Head", "Select")


class GateError(Exception):
    """The gate itself cannot run (no CLI v2, worker died...)."""


@dataclass(frozen=True)
class StaticProblem:
    line: int  # 1-based line within the block
    message: str  # e.g. "aws dynamodb get-item: the following arguments are required: --table-name"


@dataclass(frozen=True)
class AwsCall:
    line: int
    argv: tuple[str, ...]  # without the leading "aws"
    service: str | None
    operation: str | None  # API operation name, e.g. "FilterLogEvents", when known


def is_read_only_operation(operation: str | None) -> bool:
    """True for API operations that only read (Get*, List*, Describe*...); False if unknown."""
    return bool(operation) and operation.startswith(READ_ONLY_PREFIXES)


# --------------------------------------------------------------------------------------
# Finding the CLI
# --------------------------------------------------------------------------------------
def _scratch_env(home: str) -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin", "HOME": home, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
        "AWS_ACCESS_KEY_ID": "AKIAGATESTUB00000000",
        "AWS_SECRET_ACCESS_KEY": "gatestub/secret/key/not/real/0000000000",
        "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_PAGER": "", "AWS_CLI_AUTO_PROMPT": "off", "AWS_MAX_ATTEMPTS": "1",
        "PYTHONNOUSERSITE": "1", "PYTHONDONTWRITEBYTECODE": "1",
    }


_VERIFIED_CLIS: set[tuple[str, int, int]] = set()


def find_aws_cli_v2(explicit: str | None = None) -> str:
    """Path of the AWS CLI v2 to validate with: ``explicit``, else ``$RUNBOOK_AWS_CLI``,
    else the first ``aws`` on PATH. Raises GateError unless it runs and says aws-cli/2."""
    source = "argument"
    cli = explicit
    if not cli:
        cli, source = os.environ.get("RUNBOOK_AWS_CLI") or None, "RUNBOOK_AWS_CLI"
    if not cli:
        cli, source = shutil.which("aws"), "PATH"
        if not cli:
            raise GateError("no AWS CLI found: set RUNBOOK_AWS_CLI to the AWS CLI v2 "
                            "(e.g. /usr/bin/aws from Debian's awscli package)")
    if os.sep not in cli:
        found = shutil.which(cli)
        if not found:
            raise GateError(f"AWS CLI {cli!r} (from {source}) is not on PATH")
        cli = found
    if not os.path.isfile(cli) or not os.access(cli, os.X_OK):
        raise GateError(f"AWS CLI {cli!r} (from {source}) does not exist or is not executable")
    stat = os.stat(cli)
    key = (cli, stat.st_mtime_ns, stat.st_size)
    if key in _VERIFIED_CLIS:  # `aws --version` costs ~0.5 s: once per process
        return cli
    with tempfile.TemporaryDirectory(prefix="gate-aws-version-") as home:
        env = dict(os.environ)  # a pyenv shim needs the caller's PATH and PYENV_*
        env.update({k: v for k, v in _scratch_env(home).items() if k != "PATH"})
        try:
            proc = subprocess.run([cli, "--version"], capture_output=True, text=True,
                                  timeout=60, env=env, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise GateError(f"cannot run {cli} --version: {exc}") from exc
    version = (proc.stdout.strip() or proc.stderr.strip()).splitlines()
    version_line = version[0] if version else ""
    if not version_line.startswith("aws-cli/2."):
        shown = version_line or f"exit status {proc.returncode}, no version printed"
        raise GateError(
            f"{cli} (from {source}) is not AWS CLI v2: {shown!r}; the gate needs aws-cli/2.x "
            "(set RUNBOOK_AWS_CLI=/usr/bin/aws, Debian's awscli package)")
    _VERIFIED_CLIS.add(key)
    return cli


def _cli_interpreter(cli: str) -> str:
    """The Python interpreter that runs the CLI script (its shebang)."""
    real = os.path.realpath(cli)
    try:
        with open(real, "rb") as fh:
            first = fh.readline(512)
    except OSError as exc:
        raise GateError(f"cannot read {real}: {exc}") from exc
    if not first.startswith(b"#!"):
        raise GateError(f"{real} is not a Python script (no shebang): the static gate runs "
                        "the CLI v2 in-process and needs a Python-based install such as "
                        "Debian's /usr/bin/aws")
    parts = first[2:].decode("utf-8", "replace").split()
    if parts and os.path.basename(parts[0]) == "env" and len(parts) > 1:
        interp = shutil.which(parts[1], path="/usr/local/bin:/usr/bin:/bin")
    else:
        interp = parts[0] if parts else None
    if not interp or "python" not in os.path.basename(interp):
        raise GateError(f"{real} is not run by Python (shebang {first!r})")
    return interp


# --------------------------------------------------------------------------------------
# The worker
# --------------------------------------------------------------------------------------
class _Worker:
    def __init__(self, interpreter: str, home: str):
        self.interpreter = interpreter
        self.home = home
        self.proc: subprocess.Popen[str] | None = None
        self.info: dict[str, Any] = {}
        self.start()

    def start(self) -> None:
        argv = [self.interpreter, "-I", str(WORKER_SCRIPT)]
        if _unshare():
            argv = [_unshare(), "-rn", *argv]  # no network at all
        env = _scratch_env(self.home)
        try:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL, text=True, encoding="utf-8", env=env,
                cwd=self.home, start_new_session=True, bufsize=1)
        except OSError as exc:
            raise GateError(f"cannot start the AWS CLI v2 worker: {exc}") from exc
        line = self._readline(WORKER_START_TIMEOUT)
        if line is None:
            self.kill()
            raise GateError("the AWS CLI v2 worker did not start (no answer)")
        try:
            self.info = json.loads(line)
        except ValueError as exc:
            self.kill()
            raise GateError(f"the AWS CLI v2 worker said {line!r}") from exc
        if not self.info.get("ready"):
            self.kill()
            raise GateError(f"the AWS CLI v2 worker failed: {self.info.get('error')}")
        if not str(self.info.get("version", "")).startswith("2."):
            self.kill()
            raise GateError(f"the worker imported awscli {self.info.get('version')}, not v2")

    def _readline(self, timeout: float) -> str | None:
        assert self.proc and self.proc.stdout
        result: list[str] = []
        reader = threading.Thread(target=lambda: result.append(self.proc.stdout.readline()),
                                  daemon=True)
        reader.start()
        reader.join(timeout)
        if reader.is_alive() or not result or not result[0]:
            return None
        return result[0]

    def ask(self, request: dict[str, Any]) -> dict[str, Any] | None:
        """One request; None if the worker died or timed out (then it is killed)."""
        if not self.proc or self.proc.poll() is not None:
            return None
        try:
            assert self.proc.stdin
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
        except OSError:
            self.kill()
            return None
        line = self._readline(WORKER_TIMEOUT)
        if line is None:
            self.kill()
            return None
        return json.loads(line)

    def kill(self) -> None:
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        try:
            if proc.stdin:
                proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, 9)
            except OSError:
                pass
            proc.wait(timeout=5)
        for stream in (proc.stdout,):
            try:
                if stream:
                    stream.close()
            except OSError:
                pass


@lru_cache(maxsize=1)
def _unshare() -> str | None:
    """Path of unshare(1) if it can give a process an empty network namespace here."""
    path = shutil.which("unshare") or shutil.which("unshare", path="/usr/bin:/bin")
    if not path:
        return None
    try:
        ok = subprocess.run([path, "-rn", "true"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return path if ok.returncode == 0 else None


# --------------------------------------------------------------------------------------
# Shell expansion sandbox
# --------------------------------------------------------------------------------------
# Real tools the expansion may use (so $(date ...), jq, sed... give real values). Anything
# else is a no-op that prints the marker: no rm, no kubectl, no ssh, no network tools.
_ALLOWED_TOOLS = (
    "date", "cat", "tr", "sed", "awk", "cut", "head", "tail", "grep", "egrep", "wc", "sort",
    "uniq", "jq", "base64", "basename", "dirname", "seq", "mktemp", "tee", "printf", "echo",
    "true", "false", "test", "expr", "md5sum", "sha256sum", "sha1sum", "od", "xxd", "column",
    "rev", "paste", "fold", "nl", "realpath", "readlink", "ls", "touch", "mkdir", "numfmt",
    "gzip", "zcat", "env", "printenv", "id", "uname", "hostname", "sleep", "timeout",
)

_PRELUDE = r"""
# Static gate prelude: expands a snippet, recording each aws argv. Never calls AWS.
shopt -s expand_aliases
__gate_mark=gatestub
__gate_where() {  # line of the snippet the innermost call came from
  local i
  for ((i = 1; i < ${#BASH_SOURCE[@]}; i++)); do
    if [[ ${BASH_SOURCE[i]} == "$__GATE_SNIPPET" ]]; then
      printf '%s' "${BASH_LINENO[i-1]}"; return
    fi
  done
  printf '0'
}
aws() {
  printf '%s\0' CALL "$(__gate_where)" "$#" "$@" >> "$__GATE_CALLS"
  local out=json prev= a
  for a in "$@"; do
    [[ $prev == --output ]] && out=$a
    [[ $a == --output=* ]] && out=${a#--output=}
    prev=$a
  done
  if [[ $out == json ]]; then printf '"%s"\n' "$__gate_mark"; else printf '%s\n' "$__gate_mark"; fi
  return 0
}
# Network and interpreters: never run.
curl() { printf '%s\n' "$__gate_mark"; return 0; }
wget() { printf '%s\n' "$__gate_mark"; return 0; }
python() { printf '%s\n' "$__gate_mark"; return 0; }
python3() { printf '%s\n' "$__gate_mark"; return 0; }
command_not_found_handle() { printf '%s\n' "$__gate_mark"; return 0; }
# Text filters: a value derived from a stubbed command stays recognisably unknown.
__gate_filter() {
  local tool=$1 input; shift
  input=$(command cat; printf x); input=${input%x}
  if [[ ${input,,} == *gatestub* ]]; then printf '%s\n' "$__gate_mark"; return 0; fi
  printf '%s' "$input" | command "$tool" "$@"
}
for __t in jq grep egrep awk sed cut head tr sort uniq base64 column; do
  eval "$__t() { __gate_filter $__t \"\$@\"; }"
done
tail() {
  local a; for a in "$@"; do [[ $a == -f || $a == -F || $a == --follow* ]] && return 0; done
  __gate_filter tail "$@"
}
# Wrappers that run a command: run it here so an aws inside is still captured.
timeout() {
  while [[ $1 == -* ]]; do [[ $1 == -s || $1 == -k || $1 == --signal || $1 == --kill-after ]] && shift; shift; done
  shift; "$@"
}
nohup() { "$@"; }
sudo() { while [[ $1 == -* ]]; do shift; done; "$@"; }
env() {
  (
    while (($#)); do
      case $1 in -i|-|--ignore-environment) shift ;; -u) shift 2 ;; *=*) export "$1"; shift ;; *) break ;; esac
    done
    if (($#)); then "$@"; else builtin command env; fi
  )
}
watch() {
  while [[ $1 == -* ]]; do case $1 in -n|--interval) shift ;; esac; shift; done
  "$@"
}
command() {
  if [[ $1 == aws ]]; then shift; aws "$@"; else builtin command "$@"; fi
}
xargs() {  # enough of xargs to run an aws function once per input item
  local repl= items=() item a
  while [[ $1 == -* ]]; do
    case $1 in
      -I) repl=$2; shift ;;
      -I*) repl=${1#-I} ;;
      -n|-P|-L|-d|-s|-E) shift ;;
    esac
    shift
  done
  mapfile -t items < <(builtin command cat)
  (($#)) || set -- echo
  if [[ -n $repl ]]; then
    for item in "${items[@]}"; do
      local args=()
      for a in "$@"; do args+=("${a//"$repl"/$item}"); done
      "${args[@]}"
    done
  else
    local words=()
    for item in "${items[@]}"; do read -ra a <<<"$item"; words+=("${a[@]}"); done
    "$@" "${words[@]}"
  fi
}
# Polling loops: sleep is instant and breaks the enclosing loop after a few rounds.
declare -A __gate_sleeps
__gate_sleep() {
  local k=${BASH_LINENO[0]}
  __gate_sleeps[$k]=$(( ${__gate_sleeps[$k]:-0} + 1 ))
  (( __gate_sleeps[$k] <= 2 ))
}
alias sleep='__gate_sleep || break'
alias exit='__gate_exit'
__gate_exit() { return 0; }
declare -A __gate_reads
read() {  # stdin is /dev/null: an interactive prompt gets the marker once per line
  if [[ /dev/stdin -ef /dev/null ]]; then
    local k=${BASH_LINENO[0]} a names=() skip=0
    __gate_reads[$k]=$(( ${__gate_reads[$k]:-0} + 1 ))
    (( __gate_reads[$k] > 1 )) && return 1
    for a in "$@"; do
      if ((skip)); then skip=0; continue; fi
      case $a in -p|-t|-n|-N|-d|-i|-u) skip=1 ;; -a) skip=1 ;; -*) ;; *) names+=("$a") ;; esac
    done
    ((${#names[@]})) || names=(REPLY)
    for a in "${names[@]}"; do printf -v "$a" '%s' "$__gate_mark"; done
    return 0
  fi
  builtin read "$@"
}
# errexit/nounset would stop the expansion at the first harmless failure.
set -o functrace
trap 'builtin set +eu' DEBUG
source "$__GATE_SNIPPET"
"""


def _build_toolbox(root: Path) -> Path:
    bindir = root / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    for tool in _ALLOWED_TOOLS:
        for base in ("/usr/bin", "/bin"):
            src = Path(base) / tool
            if src.exists():
                dst = bindir / tool
                if not dst.exists():
                    dst.symlink_to(src)
                break
    (root / "prelude.sh").write_text(_PRELUDE, encoding="utf-8")
    return bindir


def _parse_calls(data: bytes) -> list[tuple[int, tuple[str, ...]]]:
    parts = data.split(b"\0")
    calls: list[tuple[int, tuple[str, ...]]] = []
    i = 0
    while i + 2 < len(parts):
        if parts[i] != b"CALL":
            i += 1
            continue
        try:
            line, argc = int(parts[i + 1]), int(parts[i + 2])
        except ValueError:
            i += 1
            continue
        args = parts[i + 3:i + 3 + argc]
        if len(args) < argc:
            break  # truncated record (killed mid-write)
        calls.append((line, tuple(a.decode("utf-8", "surrogateescape") for a in args)))
        i += 3 + argc
    return calls


# --------------------------------------------------------------------------------------
# Placeholders
# --------------------------------------------------------------------------------------
_BRACE_RE = re.compile(r"(?<![$\\{])\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\}(?!\})")
_JINJA_RE = re.compile(r"\{\{\s*[A-Za-z_][\w.]*\s*\}\}")
_ANGLE_RE = re.compile(r"<[a-z][a-z0-9-]*>")
_NOT_PLACEHOLDERS = {"print", "next"}  # awk '{print}', '{next}'


def _comment_start(line: str) -> int:
    """Index where an unquoted shell comment starts in line, or len(line)."""
    quote = None
    i = 0
    while i < len(line):
        c = line[i]
        if quote:
            if c == "\\" and quote == '"':
                i += 2
                continue
            if c == quote:
                quote = None
        elif c == "\\":
            i += 2
            continue
        elif c in "'\"":
            quote = c
        elif c == "#" and (i == 0 or line[i - 1] in " \t;|&("):
            return i
        i += 1
    return len(line)


def _in_json_string(line: str, pos: int) -> bool:
    """Whether pos sits inside a JSON string value ("path": "/users/{id}")."""
    opening = None
    i = 0
    while i < pos:
        c = line[i]
        if c == "\\":
            i += 2
            continue
        if c == '"':
            opening = None if opening is not None else i
        i += 1
    if opening is None:
        return False
    before = line[:opening].rstrip()
    if before.endswith("\\"):  # \"...\" inside a double-quoted shell string
        before = before[:-1].rstrip()
    if before[-1:] in (":", "[", ",", "{"):
        return True
    close = line.find('"', pos)
    return close != -1 and line[close + 1:].lstrip().startswith(":")


def find_placeholders(code: str) -> list[StaticProblem]:
    problems = []
    for lineno, line in enumerate(code.splitlines(), 1):
        text = line[:_comment_start(line)]
        for m in _JINJA_RE.finditer(text):
            problems.append(StaticProblem(lineno, f"unresolved template expression {m.group(0)}"))
        for m in _BRACE_RE.finditer(text):
            if m.group(1) in _NOT_PLACEHOLDERS or _in_json_string(text, m.start()):
                continue
            if _JINJA_RE.search(text[max(0, m.start() - 3):m.end() + 3]):
                continue
            problems.append(StaticProblem(lineno, f"unresolved placeholder {m.group(0)}"))
        for m in _ANGLE_RE.finditer(text):
            problems.append(StaticProblem(lineno, f"unfilled operator input {m.group(0)}"))
    return problems


def _neutralise_placeholders(code: str) -> tuple[str, dict[str, str]]:
    """Same lines with each placeholder replaced by a unique marker token, so that bash can
    parse and expand the block; returns the text and {token: original placeholder}."""
    tokens: dict[str, str] = {}

    def token(m: re.Match[str]) -> str:
        if m.group(0).strip("{}") in _NOT_PLACEHOLDERS:
            return m.group(0)
        tok = f"{MARKER}p{len(tokens)}x"
        tokens[tok] = m.group(0)
        return tok

    out = []
    for line in code.splitlines(keepends=True):
        cut = _comment_start(line)
        head, tail = line[:cut], line[cut:]
        for rx in (_JINJA_RE, _ANGLE_RE, _BRACE_RE):
            head = rx.sub(token, head)
        out.append(head + tail)
    return "".join(out), tokens


def _restore_placeholders(argv: tuple[str, ...], tokens: dict[str, str]) -> tuple[str, ...]:
    if not tokens:
        return argv
    rx = re.compile("|".join(re.escape(t) for t in sorted(tokens, key=len, reverse=True)))
    return tuple(rx.sub(lambda m: tokens[m.group(0)], a) for a in argv)


# --------------------------------------------------------------------------------------
# Service models (the project's botocore) and constraint checks
# --------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _loader():
    import botocore
    from botocore.loaders import Loader

    # Only the models shipped with botocore: never ~/.aws/models, never config files.
    data = os.path.join(os.path.dirname(botocore.__file__), "data")
    return Loader(extra_search_paths=[data], include_default_search_paths=False)


@lru_cache(maxsize=1)
def _available_services() -> frozenset[str]:
    return frozenset(_loader().list_available_services("service-2"))


@lru_cache(maxsize=512)
def _service_model(service: str):
    from botocore.model import ServiceModel

    if service not in _available_services():
        return None
    return ServiceModel(_loader().load_service_model(service, "service-2"), service)


@lru_cache(maxsize=512)
def _paginator_names(service: str) -> frozenset[str] | None:
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
    return isinstance(value, str) and bool(_MARKER_RE.search(value) or
                                           _BRACE_RE.search(value) or _ANGLE_RE.search(value))


Violation = tuple[str, str]  # (parameter path, what is wrong)


def _constraint_errors(shape, value: Any, path: str, out: list[Violation], depth: int = 0) -> None:
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
                _constraint_errors(member, member_value, f"{path}.{name}" if path else name,
                                   out, depth + 1)
    elif t in ("list", "map") and isinstance(value, (list, dict)):
        mx = meta.get("max")
        if mx is not None and len(value) > mx:
            out.append((path, f"{len(value)} items, the maximum is {mx}"))
        if t == "list" and isinstance(value, list):
            for i, item in enumerate(value):
                _constraint_errors(shape.member, item, f"{path}[{i}]", out, depth + 1)
        elif isinstance(value, dict):
            for k, v in value.items():
                _constraint_errors(shape.key, k, f"{path} key", out, depth + 1)
                _constraint_errors(shape.value, v, f"{path}.{k}", out, depth + 1)
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
    model = _service_model(service)
    if model is None or operation not in model.operation_names:
        return []
    shape = model.operation_model(operation).input_shape
    out: list[Violation] = []
    if shape is not None and isinstance(params, dict):
        _constraint_errors(shape, params, "", out)
    return out


def _cli_option(member_path: str) -> str | None:
    from botocore import xform_name

    head = re.match(r"[A-Za-z0-9_]+", member_path)
    return "--" + xform_name(head.group(0), "-") if head else None


# --------------------------------------------------------------------------------------
# Python blocks
# --------------------------------------------------------------------------------------
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


def check_python_code(code: str) -> list[StaticProblem]:
    from botocore import xform_name

    try:
        tree = compile(code, "<runbook block>", "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
        compile(tree, "<runbook block>", "exec", dont_inherit=True)
    except SyntaxError as exc:
        return [StaticProblem(exc.lineno or 1, f"python: SyntaxError: {exc.msg}")]
    except ValueError as exc:  # e.g. null bytes
        return [StaticProblem(1, f"python: {exc}")]
    problems: list[StaticProblem] = []

    def check_service(node: ast.AST, svc: str) -> str | None:
        svc = _SERVICE_ALIASES.get(svc, svc)
        if svc in _available_services():
            return svc
        close = difflib.get_close_matches(svc, sorted(_available_services()), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        problems.append(StaticProblem(node.lineno, f"boto3: unknown service {svc!r}{hint}"))
        return None

    bound: dict[str, set[str | None]] = {}  # variable -> services assigned to it
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            svc = _client_service(node)
            if isinstance(svc, str):
                check_service(node, svc)
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
                ok = isinstance(target, ast.Name) and real in _available_services()
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
            if svc not in _available_services():
                svc = None
        if not svc:
            continue
        model = _service_model(svc)
        if model is None:
            continue
        method = node.func.attr
        ops = {xform_name(op): op for op in model.operation_names}
        if method in _CLIENT_EXTRA_METHODS:
            if method in ("get_paginator", "can_paginate") and node.args and \
                    isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                name = node.args[0].value
                pages = _paginator_names(svc)
                if name not in ops:
                    problems.append(StaticProblem(node.lineno, f"boto3 {svc}: {label}.{method}"
                                                  f"({name!r}): no such operation"))
                elif method == "get_paginator" and pages is not None and ops[name] not in pages:
                    problems.append(StaticProblem(node.lineno, f"boto3 {svc}: operation "
                                                  f"{name!r} cannot be paginated"))
            continue
        if method.startswith("_") or method not in ops and method in dir(object):
            continue
        if method not in ops:
            close = difflib.get_close_matches(method, sorted(ops), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            problems.append(StaticProblem(
                node.lineno, f"boto3 {svc}: {label}.{method}() is not an operation of "
                             f"{svc}{hint}"))
            continue
        if node.args or any(k.arg is None for k in node.keywords):
            continue  # positional or **kwargs: not checked
        shape = model.operation_model(ops[method]).input_shape
        members = shape.members if shape is not None else {}
        given = [k.arg for k in node.keywords]
        for k in node.keywords:
            if k.arg not in members:
                close = difflib.get_close_matches(k.arg, list(members), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                problems.append(StaticProblem(
                    k.value.lineno if hasattr(k.value, "lineno") else node.lineno,
                    f"boto3 {svc}: {label}.{method}(): unknown parameter {k.arg!r}{hint}"))
        required = shape.required_members if shape is not None else []
        missing = [r for r in required if r not in given
                   and not members[r].metadata.get("idempotencyToken")]
        if missing:
            problems.append(StaticProblem(
                node.lineno, f"boto3 {svc}: {label}.{method}(): missing required "
                             f"parameter{'s' if len(missing) > 1 else ''} {', '.join(missing)}"))
        for k in node.keywords:
            if k.arg in members:
                try:
                    value = ast.literal_eval(k.value)
                except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                    continue
                out: list[Violation] = []
                _constraint_errors(members[k.arg], value, k.arg, out)
                for path, what in out:
                    problems.append(StaticProblem(node.lineno, f"boto3 {svc}: {label}."
                                                  f"{method}(): {path}: {what}"))
    return problems


# --------------------------------------------------------------------------------------
# The checker
# --------------------------------------------------------------------------------------
class StaticChecker:
    """Static checks of runbook code blocks. Owns the AWS CLI v2 worker process.

    Use as a context manager (or call close()). Thread-safe: worker requests are
    serialised by a lock; each check_shell call has its own sandbox directory."""

    def __init__(self, aws_cli: str | None = None) -> None:
        self.aws_cli = find_aws_cli_v2(aws_cli)
        self.interpreter = _cli_interpreter(self.aws_cli)
        self._lock = threading.Lock()
        self._tmp = tempfile.TemporaryDirectory(prefix="runbook-static-")
        self._root = Path(self._tmp.name)
        (self._root / "home").mkdir()
        self._bin = _build_toolbox(self._root)
        self._prelude = self._root / "prelude.sh"
        self._bash = shutil.which("bash", path="/usr/bin:/bin") or "/bin/bash"
        self._shellcheck = shutil.which("shellcheck", path="/usr/bin:/usr/local/bin:/bin")
        self._block_seq = 0
        try:
            self._worker: _Worker | None = _Worker(self.interpreter, str(self._root / "home"))
        except BaseException:
            self._tmp.cleanup()
            raise

    @property
    def cli_version(self) -> str:
        return str(self._worker.info.get("version")) if self._worker else ""

    # -- lifecycle ----------------------------------------------------------------------
    def __enter__(self) -> StaticChecker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._worker is not None:
                self._worker.kill()
                self._worker = None
        self._tmp.cleanup()

    # -- aws commands -------------------------------------------------------------------
    def validate_aws(self, argv: tuple[str, ...] | list[str], cwd: str | None = None) \
            -> dict[str, Any]:
        """Validate one aws argv (without "aws") in the worker; returns its raw answer."""
        request = {"argv": list(argv), "cwd": cwd}
        with self._lock:
            if self._worker is None:
                raise GateError("the static checker is closed")
            answer = self._worker.ask(request)
            if answer is None:  # died or hung: one restart, one retry
                self._worker.kill()
                self._worker.start()
                answer = self._worker.ask(request)
                if answer is None:
                    raise GateError(f"the AWS CLI v2 worker died or hung on: aws {' '.join(argv)}")
        if answer.get("internal"):
            raise GateError(answer.get("error", "worker failure"))
        return answer

    def _aws_problems(self, line: int, argv: tuple[str, ...], answer: dict[str, Any],
                      tokens: dict[str, str] | None = None) -> list[StaticProblem]:
        command = answer.get("command") or " ".join(a for a in argv[:2] if not a.startswith("-"))
        label = f"aws {command}".rstrip()
        if not answer.get("ok"):
            msg = str(answer.get("error") or "rejected").strip()
            if msg.startswith("aws: error: "):
                msg = msg[len("aws: error: "):]
            msg = _restore_placeholders((msg,), tokens or {})[0]
            return [StaticProblem(line, f"{label}: {msg}")]
        problems = []
        seen = set()
        for call in answer.get("calls") or []:
            if not call.get("validated"):
                continue
            for path, what in check_api_params(call["service"], call["operation"],
                                               call["params"]):
                opt = None if answer.get("custom") else _cli_option(path)
                where = f"{opt} ({path})" if opt and "." in path or opt and "[" in path \
                    else (opt or path)
                msg = f"{where}: {what}"
                if msg not in seen:
                    seen.add(msg)
                    problems.append(StaticProblem(line, f"{label}: {msg}"))
        return problems

    # -- shell --------------------------------------------------------------------------
    def check_shell(self, code: str) -> tuple[list[StaticProblem], list[AwsCall]]:
        problems: list[StaticProblem] = []
        placeholders = find_placeholders(code)
        problems.extend(placeholders)
        runnable, tokens = _neutralise_placeholders(code)
        nlines = max(1, len(code.splitlines()))

        with self._lock:
            self._block_seq += 1
            seq = self._block_seq
        block = Path(tempfile.mkdtemp(prefix=f"block{seq}-", dir=self._root))
        try:
            snippet = block / "snippet.sh"
            snippet.write_text(runnable, encoding="utf-8")
            syntax = self._bash_syntax(snippet, nlines)
            problems.extend(syntax)
            if syntax:
                return _sorted(problems), []
            problems.extend(self._shellcheck_errors(snippet))
            raw_calls, expansion_problems = self._expand(block, snippet, code)
            problems.extend(expansion_problems)
            calls: list[AwsCall] = []
            for line, argv in raw_calls:
                answer = self.validate_aws(argv, cwd=str(block / "cwd"))
                shown = _restore_placeholders(argv, tokens)
                calls.append(AwsCall(line, shown, answer.get("service"), answer.get("operation")))
                problems.extend(self._aws_problems(line, shown, answer, tokens))
            return _sorted(problems), calls
        finally:
            shutil.rmtree(block, ignore_errors=True)

    def _bash_syntax(self, snippet: Path, nlines: int) -> list[StaticProblem]:
        proc = subprocess.run([self._bash, "--noprofile", "--norc", "-n", str(snippet)],
                              capture_output=True, text=True, timeout=30,
                              env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
        if proc.returncode == 0:
            return []
        problems = []
        for m in re.finditer(r"line (\d+): (.*)", proc.stderr):
            msg = m.group(2).strip()
            if msg.startswith("`"):  # bash echoes the offending line: not a message
                continue
            problems.append(StaticProblem(min(int(m.group(1)), nlines), f"bash: {msg}"))
        if not problems:
            problems.append(StaticProblem(1, f"bash: {proc.stderr.strip() or 'syntax error'}"))
        return problems

    def _shellcheck_errors(self, snippet: Path) -> list[StaticProblem]:
        if not self._shellcheck:
            return []
        try:
            proc = subprocess.run(
                [self._shellcheck, "-s", "bash", "-S", "error", "-f", "json1", str(snippet)],
                capture_output=True, text=True, timeout=60,
                env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(self._root)})
            report = json.loads(proc.stdout or "{}")
        except (OSError, subprocess.TimeoutExpired, ValueError):
            return []
        return [StaticProblem(int(c.get("line", 1)), f"shellcheck SC{c.get('code')}: "
                              f"{c.get('message')}")
                for c in report.get("comments", []) if c.get("level") == "error"]

    def _expand(self, block: Path, snippet: Path, original: str) \
            -> tuple[list[tuple[int, tuple[str, ...]]], list[StaticProblem]]:
        cwd = block / "cwd"
        cwd.mkdir()
        calls_file = block / "calls.bin"
        calls_file.touch()
        env = {
            "PATH": str(self._bin), "HOME": str(cwd), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
            "TZ": "UTC", "TMPDIR": str(cwd), "__GATE_CALLS": str(calls_file),
            "__GATE_SNIPPET": str(snippet),
        }
        argv = [self._bash, "--noprofile", "--norc", str(self._prelude)]
        if _unshare():
            argv = [_unshare(), "-rn", *argv]
        problems: list[StaticProblem] = []
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                start_new_session=True)
        try:
            proc.communicate(timeout=EXPANSION_TIMEOUT)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, 9)
            except OSError:
                pass
            proc.communicate()
            timed_out = True
        else:
            timed_out = False
        raw = _parse_calls(calls_file.read_bytes())
        lines = original.splitlines()
        seen: set[tuple[int, tuple[str, ...]]] = set()
        calls: list[tuple[int, tuple[str, ...]]] = []
        for line, args in raw:
            line = _aws_line(lines, line)
            key = (line, args)
            if key in seen:
                continue
            seen.add(key)
            calls.append(key)
            if len(calls) >= MAX_CALLS_PER_BLOCK:
                break
        if timed_out:
            last = calls[-1][0] if calls else 1
            problems.append(StaticProblem(last, f"shell expansion did not finish within "
                                                f"{EXPANSION_TIMEOUT:g} s (endless loop?); "
                                                f"aws commands after this point were not checked"))
        return calls, problems

    # -- python -------------------------------------------------------------------------
    def check_python(self, code: str) -> list[StaticProblem]:
        problems = check_python_code(code)
        for lineno, line in enumerate(code.splitlines(), 1):
            for m in _ANGLE_RE.finditer(line):
                if "-" in m.group(0) and not line.lstrip().startswith("#"):
                    problems.append(StaticProblem(lineno, f"unfilled operator input {m.group(0)}"))
        return _sorted(problems)


_AWS_WORD = re.compile(r"(?<![\w.-])aws(?![\w.-])")


def _aws_line(lines: list[str], reported: int) -> int:
    """bash reports some commands (inside $(...)) by their last line: walk back to the
    nearest line at or above it where the aws command starts."""
    n = len(lines)
    if n == 0:
        return 1
    reported = min(max(reported, 1), n)
    for ln in range(reported, max(0, reported - 40), -1):
        if _AWS_WORD.search(lines[ln - 1][:_comment_start(lines[ln - 1])]):
            return ln
    return reported


def _sorted(problems: list[StaticProblem]) -> list[StaticProblem]:
    out, seen = [], set()
    for p in sorted(problems, key=lambda p: p.line):
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out
