"""Shell blocks: placeholders, syntax, and the expansion that records each ``aws`` argv.

A block is expanded by real bash after ``prelude.sh`` (next to this file): there ``aws`` is a
function that appends its argv to a file and prints the marker, network tools and interpreters
never run, and text filters keep a value derived from a stubbed command recognisably unknown.
Nothing here calls AWS. Problems are ``(line, message)`` pairs, line 1-based in the block.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

from runbook.data import placeholders, portable, shell_check
from runbook.gate.sandbox.isolation import confine, limited

__all__ = [
    "MARKER", "Finding", "aws_line", "bash_syntax", "build_toolbox", "call_line",
    "expand", "find_placeholders", "neutralise_placeholders", "portability",
    "restore_placeholders", "shellcheck_errors",
]

PRELUDE = Path(__file__).resolve().parent / "prelude.sh"
MARKER = "gatestub"  # what stubbed commands print; values containing it are unknown
EXPANSION_TIMEOUT = 10.0  # seconds for bash to expand one block
EXPANSION_SCRATCH = 64 * 1024 * 1024  # bytes an expansion can write in all (its working dir)
MAX_CALLS_PER_BLOCK = 200

Finding = tuple[int, str]  # (1-based line in the block, message)
Call = tuple[int, tuple[str, ...]]  # (line, aws argv without "aws")

# Real tools the expansion may use (so $(date ...), jq, sed... give real values). Anything
# else is a no-op that prints the marker: no rm, no kubectl, no ssh, no network tools.
_ALLOWED_TOOLS = (
    "date", "cat", "tr", "sed", "awk", "cut", "head", "tail", "grep", "egrep", "wc", "sort",
    "uniq", "jq", "base64", "basename", "dirname", "seq", "mktemp", "tee", "printf", "echo",
    "true", "false", "test", "expr", "md5sum", "sha256sum", "sha1sum", "od", "xxd", "column",
    "rev", "paste", "fold", "nl", "realpath", "readlink", "ls", "touch", "mkdir", "numfmt",
    "gzip", "zcat", "env", "printenv", "id", "uname", "hostname", "sleep", "timeout",
)


def build_toolbox(root: Path) -> Path:
    """A bin/ of symlinks to the allowed tools, and the prelude, under root."""
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
    (root / "prelude.sh").write_text(PRELUDE.read_text(encoding="utf-8"), encoding="utf-8")
    return bindir


def parse_records(data: bytes) -> list[tuple[str, int, tuple[str, ...]]]:
    """(kind, line, argv) of each record of the calls file: CALL (an aws argv without "aws"),
    TOOL (the argv of a tool whose options differ between GNU and BSD, its name first)."""
    parts = data.split(b"\0")
    records: list[tuple[str, int, tuple[str, ...]]] = []
    i = 0
    while i + 2 < len(parts):
        if parts[i] not in (b"CALL", b"TOOL"):
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
        records.append((parts[i].decode(), line,
                        tuple(a.decode("utf-8", "surrogateescape") for a in args)))
        i += 3 + argc
    return records


def parse_calls(data: bytes) -> list[tuple[int, tuple[str, ...]]]:
    """The aws argvs of the calls file."""
    return [(line, args) for kind, line, args in parse_records(data) if kind == "CALL"]


# --------------------------------------------------------------------------------------
# Placeholders
# --------------------------------------------------------------------------------------
# The patterns are the data layer's (runbook.data.placeholders): one rule for what a
# placeholder, a template leftover and a fill-in look like.


def comment_start(line: str) -> int:
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


def find_placeholders(code: str) -> list[Finding]:
    problems = []
    for lineno, line in enumerate(code.splitlines(), 1):
        text = line[:comment_start(line)]
        for m in placeholders.TEMPLATE.finditer(text):
            problems.append((lineno, f"unresolved template expression {m.group(0)}"))
        for m in placeholders.PLACEHOLDER_SHAPE.finditer(text):
            if m.group(1) in placeholders.NOT_PLACEHOLDERS or _in_json_string(text, m.start()):
                continue
            if placeholders.TEMPLATE.search(text[max(0, m.start() - 3):m.end() + 3]):
                continue
            problems.append((lineno, f"unresolved placeholder {m.group(0)}"))
        for m in placeholders.FILL_IN.finditer(text):
            problems.append((lineno, f"unfilled operator input {m.group(0)}"))
    return problems


def neutralise_placeholders(code: str) -> tuple[str, dict[str, str]]:
    """Same lines with each placeholder replaced by a unique marker token, so that bash can
    parse and expand the block; returns the text and {token: original placeholder}."""
    tokens: dict[str, str] = {}

    def token(m: re.Match[str]) -> str:
        if m.group(0).strip("{}") in placeholders.NOT_PLACEHOLDERS:
            return m.group(0)
        tok = f"{MARKER}p{len(tokens)}x"
        tokens[tok] = m.group(0)
        return tok

    out = []
    for line in code.splitlines(keepends=True):
        cut = comment_start(line)
        head, tail = line[:cut], line[cut:]
        for rx in (placeholders.TEMPLATE, placeholders.FILL_IN, placeholders.PLACEHOLDER_SHAPE):
            head = rx.sub(token, head)
        out.append(head + tail)
    return "".join(out), tokens


def restore_placeholders(argv: tuple[str, ...], tokens: dict[str, str]) -> tuple[str, ...]:
    if not tokens:
        return argv
    rx = re.compile("|".join(re.escape(t) for t in sorted(tokens, key=len, reverse=True)))
    return tuple(rx.sub(lambda m: tokens[m.group(0)], a) for a in argv)



# --------------------------------------------------------------------------------------
# Syntax and expansion
# --------------------------------------------------------------------------------------
def bash_syntax(bash: str, snippet: Path, nlines: int) -> list[Finding]:
    """``bash -n``: the block's syntax errors."""
    errors = shell_check.syntax_errors(bash, snippet.read_text(encoding="utf-8"))
    return [(min(line, nlines), f"bash: {message}") for line, message in errors]


def shellcheck_errors(shellcheck: str | None, snippet: Path, home: Path) -> list[Finding]:
    """``shellcheck -S error`` (nothing if shellcheck is not installed)."""
    if not shellcheck:
        return []
    try:
        proc = subprocess.run(
            [shellcheck, "-s", "bash", "-S", "error", "-f", "json1", str(snippet)],
            capture_output=True, text=True, timeout=60,
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(home)})
        report = json.loads(proc.stdout or "{}")
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return []
    return [(int(c.get("line", 1)), f"shellcheck SC{c.get('code')}: {c.get('message')}")
            for c in report.get("comments", []) if c.get("level") == "error"]


def portability(code: str, tools: list[Call]) -> list[Finding]:
    """Forms only GNU (or only BSD) tools take (:mod:`runbook.data.portable`): read in the text
    of the block, and in the argv of each call bash expanded (an option a variable holds)."""
    found: list[Finding] = []
    seen: set[str] = set()
    for f in portable.scan(code):
        seen.add(f.rule.id)
        line, col = portable.line_col(code, f.offset)
        found.append((line, f"col {col}: {portable.message(f.rule)}"))
    for line, argv in tools:
        for _index, rule in portable.argv_findings(argv):
            if rule.id not in seen:
                seen.add(rule.id)
                found.append((line, f"{portable.message(rule)} (as expanded: {' '.join(argv)})"))
    return found


def expand(bash: str, bindir: Path, prelude: Path, block: Path, snippet: Path, original: str) \
        -> tuple[list[Call], list[Finding], list[Call]]:
    """Expand the block (``snippet``, in its own directory ``block``) after the prelude, with
    only the tools of ``bindir``: each distinct aws argv it reached, by the line it is on, and
    each distinct argv of a tool of ``portable.TOOLS`` (its name first).

    The expansion is a limited run in a sandbox. It can write only the calls file and its
    working directory, a tmpfs of EXPANSION_SCRATCH bytes, whose files the sandbox copies to
    ``block/cwd`` after it for the CLI parser (``file://`` parameters)."""
    cwd, kept = block / "cwd", block / "kept"
    cwd.mkdir()
    kept.mkdir()
    calls_file = block / "calls.bin"
    calls_file.touch()
    env = {
        "PATH": str(bindir), "HOME": str(cwd), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
        "TZ": "UTC", "TMPDIR": str(cwd), "__GATE_CALLS": str(calls_file),
        "__GATE_SNIPPET": str(snippet), "__GATE_RECORD": " ".join(portable.TOOLS),
    }
    run = limited([bash, "--noprofile", "--norc", str(prelude)], writable=[cwd, calls_file],
                  cwd=cwd)
    copy_out = '"$@"; /bin/cp -a "$0"/. "$0"/../kept/ 2>/dev/null; exit 0'
    argv = confine(["/bin/sh", "-c", copy_out, str(cwd), *run], writable=[block],
                   readable=[bindir, prelude], tmpfs=[(cwd, EXPANSION_SCRATCH)])
    problems: list[Finding] = []
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
    shutil.rmtree(cwd)  # the host's (empty: the run's was a tmpfs over it)
    kept.rename(cwd)
    raw = parse_records(calls_file.read_bytes())
    lines = original.splitlines()
    seen: set[tuple[str, int, tuple[str, ...]]] = set()
    calls: list[Call] = []
    tools: list[Call] = []
    for kind, line, args in raw:
        line = aws_line(lines, line) if kind == "CALL" else \
            call_line(lines, line, args[0] if args else "")
        if (kind, line, args) in seen:
            continue
        seen.add((kind, line, args))
        found = calls if kind == "CALL" else tools
        if len(found) < MAX_CALLS_PER_BLOCK:
            found.append((line, args))
    if timed_out:
        last = calls[-1][0] if calls else 1
        problems.append((last, f"shell expansion did not finish within {EXPANSION_TIMEOUT:g} s "
                               f"(endless loop?); aws commands after this point were not checked"))
    return calls, problems, tools


_AWS_WORD = re.compile(r"(?<![\w.-])aws(?![\w.-])")


def aws_line(lines: list[str], reported: int) -> int:
    """bash reports some commands (inside $(...)) by their last line: walk back to the
    nearest line at or above it where the aws command starts."""
    return _walk_back(lines, reported, _AWS_WORD)


def call_line(lines: list[str], reported: int, tool: str) -> int:
    """The same walk back, to the line where a call of ``tool`` is."""
    return _walk_back(lines, reported, re.compile(rf"(?<![\w.-]){re.escape(tool)}(?![\w.-])"))


def _walk_back(lines: list[str], reported: int, word: re.Pattern[str]) -> int:
    n = len(lines)
    if n == 0:
        return 1
    reported = min(max(reported, 1), n)
    for ln in range(reported, max(0, reported - 40), -1):
        if word.search(lines[ln - 1][:comment_start(lines[ln - 1])]):
            return ln
    return reported
