"""Commands that work on Linux and macOS: the options of common tools that only one userland takes.

The on-call engineer pastes commands into a Mac as often as into Linux. GNU coreutils, sed, grep
and findutils accept options that the BSD tools of macOS reject or read differently (and a few
BSD-only forms break on Linux): `date -d '1 hour ago'` makes macOS print an error and the command
goes on with an empty `--start-time`. Each such form is one `Rule` of `RULES`, with why and what
to write instead; a command that uses one on purpose says so in the data: `gnu_only: <reason>`.

One definition, two detectors, both judging an argv with `argv_findings`:

- `scan` reads the shell text itself (words split the way bash splits them, quotes removed,
  inside `$(...)`, backticks and pipelines): located to the column, used by `runbook check` on
  the data (`check`) and by the gate's static tier on every rendered block;
- the static tier's expansion also records each call of a `TOOLS` tool with its argv as bash
  expanded it (`prelude.sh`), which sees an option that only a variable holds.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from runbook.data.model import Catalog, Command
from runbook.errors import Loc, Problem

__all__ = ["RULES", "TOOLS", "Finding", "Rule", "Word", "argv_findings", "check", "message", "scan", "simple_commands"]


@dataclass(frozen=True)
class Rule:
    id: str  # what the message calls it: "date -d"
    tool: str
    options: tuple[str, ...]  # short (-d) and long (--date) spellings that trigger it
    why: str
    instead: str
    bare_only: bool = False  # short options only when nothing is attached (sed -i, not sed -i.bak)
    format: str | None = None  # a regex on a `+FORMAT` operand instead of options (date +%N)


_EPOCH = ("shell arithmetic on epoch seconds, e.g. `$(( $(date +%s) - 3600 ))` for an hour ago "
          "(AWS CLI timestamps take epoch seconds; `* 1000` where the API wants milliseconds)")

RULES: tuple[Rule, ...] = (
    Rule("date -d", "date", ("-d", "--date"),
         "is GNU-only: macOS (BSD) date has no -d, prints an error and the value comes out empty",
         _EPOCH),
    Rule("date -v", "date", ("-v", "-j"),
         "is BSD-only: GNU date rejects -v and -j", _EPOCH),
    Rule("date -I", "date", ("-I", "--iso-8601", "--rfc-3339"),
         "is GNU-only: older macOS date has no ISO 8601 option",
         "`date -u +%Y-%m-%dT%H:%M:%SZ`"),
    Rule("date +%N", "date", (),
         "is GNU-only: BSD date has no %N (nanoseconds) and prints a literal N",
         "`$(( $(date +%s) * 1000 ))` for milliseconds", format=r"%[-_0^#]?\d*N"),
    Rule("sed -i", "sed", ("-i", "--in-place"),
         "without an attached suffix differs: GNU sed takes -i alone, BSD sed reads the next "
         "word as the suffix (and `sed -i ''` is BSD-only: GNU reads '' as the script)",
         "`sed -i.bak 'SCRIPT' FILE && rm FILE.bak`", bare_only=True),
    Rule("sed -r", "sed", ("-r", "--regexp-extended"),
         "is the GNU spelling: older macOS sed rejects -r", "`sed -E` (both)"),
    Rule("grep -P", "grep", ("-P", "--perl-regexp"),
         "is GNU-only: macOS grep has no Perl regular expressions",
         "`grep -E` (`[0-9]` for `\\d`), or jq for JSON"),
    Rule("xargs -r", "xargs", ("-r", "--no-run-if-empty"),
         "is a GNU extension that older macOS xargs rejects",
         "test for empty input first, e.g. `[ -n \"$ids\" ] && printf '%s\\n' \"$ids\" | xargs ...`, "
         "or a `while read -r` loop"),
    Rule("xargs -d", "xargs", ("-d", "--delimiter"),
         "is GNU-only", "`tr '\\n' '\\0' | xargs -0 ...`"),
    Rule("base64 -w", "base64", ("-w", "--wrap"),
         "is GNU-only: macOS base64 has -b (and does not wrap by default)", "`base64 | tr -d '\\n'`"),
    Rule("base64 -d", "base64", ("-d", "-D"),
         "differs: GNU base64 decodes with -d, older macOS base64 only with -D",
         "`base64 --decode` (both)"),
    Rule("stat -c", "stat", ("-c", "-f", "--format", "--printf"),
         "differs: -c is GNU-only, and -f is a format on BSD but --file-system on GNU",
         "`wc -c < FILE` for a size, `ls -l` for the rest"),
    Rule("readlink -f", "readlink", ("-f", "-e", "-m", "--canonicalize", "--canonicalize-existing",
                                     "--canonicalize-missing"),
         "is GNU-only: macOS readlink before 12.3 has no -f",
         "`(cd \"$(dirname FILE)\" && pwd -P)`"),
    Rule("find -printf", "find", ("-printf", "-fprintf"),
         "is GNU-only: BSD find has no -printf", "`-print`, or `-exec ... {} +`"),
    Rule("cp --parents", "cp", ("--parents",),
         "is GNU-only", "`mkdir -p \"DEST/$(dirname FILE)\" && cp FILE \"DEST/FILE\"`"),
)

TOOLS: tuple[str, ...] = tuple(dict.fromkeys(r.tool for r in RULES))

# Short options that take a value (the rest of the word, else the next word), per tool, in
# either userland: what keeps `grep -e -P` or `date -f -d` from looking like an option.
_VALUED = {"date": "dfrvz", "sed": "ef", "grep": "efmABCdD", "xargs": "ILnPsEdaJRS",
           "base64": "wbo", "stat": "cft", "readlink": "", "cp": "St"}
# Short options whose value, when there is one, is attached only (GNU sed -i.bak, date -Iseconds).
_ATTACHED = {"date": "I", "sed": "i", "xargs": "il"}
# Long options that take the next word as their value unless written --name=value.
_LONG_VALUED = {"--date", "--file", "--reference", "--set", "--expression", "--regexp", "--max-count",
                "--context", "--after-context", "--before-context", "--format", "--printf",
                "--delimiter", "--arg-file", "--max-args", "--max-lines", "--wrap", "--target-directory"}
# Commands that run the rest of their argv as a command (after their own options and values).
_WRAPPERS = {"sudo": "ugCDhprtT", "command": "", "builtin": "", "exec": "a", "nohup": "", "time": "",
             "nice": "n", "env": "uCS", "timeout": "sk", "xargs": _VALUED["xargs"], "watch": "nd"}


def _parse(tool: str, argv: Sequence[str]) -> Iterator[tuple[int, str, bool]]:
    """(index, option or `+operand`, value attached) of each option word of `argv` (argv[0]: the tool)."""
    valued, attached = _VALUED.get(tool, ""), _ATTACHED.get(tool, "")
    skip = False
    for i, word in enumerate(argv[1:], 1):
        if skip:
            skip = False
            continue
        if word == "--":
            return
        if tool == "find":  # primaries come after the paths
            if word.startswith("-"):
                yield i, word, False
            continue
        if word.startswith("--"):
            name, eq, _ = word.partition("=")
            yield i, name, bool(eq)
            skip = not eq and name in _LONG_VALUED
        elif word.startswith("-") and len(word) > 1:
            for j, ch in enumerate(word[1:], 2):
                rest = word[j:]
                yield i, "-" + ch, bool(rest)
                if ch in valued:
                    skip = not rest
                    break
                if ch in attached:
                    break
        elif word.startswith("+"):
            yield i, word, False


def _command_of(argv: Sequence[str]) -> Sequence[str]:
    """The argv a wrapper (sudo, env, xargs...) runs, or argv itself."""
    while argv and argv[0].rsplit("/", 1)[-1] in _WRAPPERS:
        name = argv[0].rsplit("/", 1)[-1]
        if name == "xargs":
            return argv
        valued = _WRAPPERS[name]
        i, skip = 1, False
        while i < len(argv):
            word = argv[i]
            if skip:
                skip = False
            elif word == "--":
                i += 1
                break
            elif word.startswith("-") and len(word) > 1:
                skip = word[-1] in valued and not word.startswith("--")
            elif name == "env" and "=" in word:
                pass
            elif name == "timeout":  # the duration
                i += 1
                break
            else:
                break
            i += 1
        argv = argv[i:]
    return argv


def argv_findings(argv: Sequence[str]) -> list[tuple[int, Rule]]:
    """(index of the word, rule) of every non-portable form in one command's argv."""
    argv = list(argv)
    base = len(argv)
    argv = list(_command_of(argv))
    base -= len(argv)
    if not argv:
        return []
    tool = argv[0].rsplit("/", 1)[-1]
    if tool == "egrep":
        tool = "grep"
    found: list[tuple[int, Rule]] = []
    rules = [r for r in RULES if r.tool == tool]
    end = len(argv)
    if tool == "xargs":  # its own options, then the command it runs
        end = _xargs_command(argv)
        found += [(base + end + i, r) for i, r in argv_findings(argv[end:])]
    for i, opt, has_value in _parse(tool, argv[:end]):
        for r in rules:
            if r.format is not None:
                if opt.startswith("+") and re.search(r.format, opt):
                    found.append((base + i, r))
            elif opt in r.options and not (r.bare_only and has_value and not opt.startswith("--")):
                found.append((base + i, r))
    return sorted(found, key=lambda f: f[0])


def _xargs_command(argv: Sequence[str]) -> int:
    """Index of the first word of the command xargs runs (len(argv) if none)."""
    valued, attached = _VALUED["xargs"], _ATTACHED["xargs"]
    i = 1
    while i < len(argv):
        word = argv[i]
        if word == "--":
            return i + 1
        if not word.startswith("-") or len(word) == 1:
            return i
        if not word.startswith("--"):
            for j, ch in enumerate(word[1:], 2):
                if ch in valued:
                    i += not word[j:]
                    break
                if ch in attached:
                    break
        i += 1
    return len(argv)


# --------------------------------------------------------------------------------------
# Reading shell text
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Word:
    text: str  # quotes removed; an expansion ($x, $(...)) shows as "\0"
    start: int  # offset in the code
    literal: bool


_NAME_EQ = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\[[^]]*\])?\+?=")
_KEYWORDS = {"!", "{", "}", "then", "do", "else", "elif", "if", "while", "until", "fi", "done", "esac",
             "[[", "]]", "function"}
_NOT_COMMANDS = {"for", "case", "select", "in", "[["}


class _Reader:
    """Bash's word splitting, enough of it to find the commands of a block: quotes, escapes,
    comments, continuations, here-documents, operators, and the commands inside `$(...)`,
    `` `...` ``, `<(...)` and `$((...))`."""

    def __init__(self, code: str) -> None:
        self.code = code
        self.commands: list[list[Word]] = []

    def read(self, pos: int = 0, *, closing: str = "") -> int:
        """Commands from pos up to `closing` (")" or "`", or the end); the position after it."""
        code, n = self.code, len(self.code)
        words: list[Word] = []
        buf: list[str] = []
        start = -1
        literal = True
        redirect = False
        heredocs: list[tuple[str, bool]] = []
        depth = 0

        def end_word() -> None:
            nonlocal buf, start, literal, redirect
            if start >= 0:
                if not redirect:
                    words.append(Word("".join(buf), start, literal))
                redirect = False
            buf, start, literal = [], -1, True

        def end_command() -> None:
            end_word()
            if words:
                self.commands.append(list(words))
            words.clear()

        def begin(i: int) -> None:
            nonlocal start
            if start < 0:
                start = i

        i = pos
        while i < n:
            c = code[i]
            if closing == "`" and c == "`":
                end_command()
                return i + 1
            if c == "\\":
                if i + 1 < n and code[i + 1] == "\n":
                    i += 2
                    continue
                begin(i)
                if i + 1 < n:
                    buf.append(code[i + 1])
                i += 2
                continue
            if c == "'":
                begin(i)
                close = code.find("'", i + 1)
                close = n if close < 0 else close
                buf.append(code[i + 1:close])
                i = close + 1
                continue
            if c == '"':
                begin(i)
                i += 1
                while i < n and code[i] != '"':
                    if code[i] == "\\" and i + 1 < n:
                        buf.append(code[i + 1])
                        i += 2
                    elif code[i] == "$" and code.startswith("$(", i):
                        i = self.read(i + 2, closing=")")
                        buf.append("\0")
                        literal = False
                    elif code[i] == "`":
                        i = self.read(i + 1, closing="`")
                        buf.append("\0")
                        literal = False
                    elif code[i] == "$":
                        buf.append("\0")
                        literal = False
                        i = self._skip_parameter(i)
                    else:
                        buf.append(code[i])
                        i += 1
                i += 1
                continue
            if c == "$" or (c in "<>" and code.startswith("(", i + 1)):
                begin(i)
                literal = False
                buf.append("\0")
                if code.startswith("(", i + 1):
                    i = self.read(i + 2, closing=")")
                else:
                    i = self._skip_parameter(i)
                continue
            if c == "`":
                begin(i)
                literal = False
                buf.append("\0")
                i = self.read(i + 1, closing="`")
                continue
            if c == "#" and start < 0:
                nl = code.find("\n", i)
                i = n if nl < 0 else nl
                continue
            if c in " \t":
                end_word()
                i += 1
                continue
            if c == "\n":
                end_command()
                i += 1
                for delim, strip in heredocs:
                    i = self._skip_heredoc(i, delim, strip)
                heredocs.clear()
                continue
            if c in "<>":
                if start >= 0 and "".join(buf).isdigit() and literal:
                    buf, start = [], -1  # 2>&1: the descriptor is not a word
                end_word()
                j = i
                while j < n and code[j] in "<>&|-":
                    j += 1
                op = code[i:j]
                i = j
                if op.startswith("<<") and not op.startswith("<<<"):
                    while i < n and code[i] in " \t":
                        i += 1
                    m = re.match(r"['\"]?([^\s'\";|&<>()]+)['\"]?", code[i:])
                    if m:
                        heredocs.append((m.group(1), op.endswith("-")))
                        i += m.end()
                    continue
                if op.endswith("&") and i < n and (code[i].isdigit() or code[i] == "-"):
                    i += 1  # >&2, <&-
                    continue
                redirect = True
                continue
            if c in "|&;":
                end_command()
                i += 1
                continue
            if c == "(":
                end_command()
                depth += 1
                i += 1
                continue
            if c == ")":
                end_command()
                if closing == ")" and depth == 0:
                    return i + 1
                depth = max(0, depth - 1)
                i += 1
                continue
            begin(i)
            buf.append(c)
            i += 1
        end_command()
        return n

    def _skip_parameter(self, i: int) -> int:
        """Past `$name`, `${...}`, `$1`, `$?` at i."""
        code = self.code
        if code.startswith("${", i):
            close = code.find("}", i)
            return len(code) if close < 0 else close + 1
        m = re.match(r"\$([A-Za-z_][A-Za-z0-9_]*|[0-9?#$!@*-]?)", code[i:])
        return i + (m.end() if m else 1)

    def _skip_heredoc(self, i: int, delim: str, strip: bool) -> int:
        code = self.code
        while i < len(code):
            nl = code.find("\n", i)
            line = code[i:] if nl < 0 else code[i:nl]
            i = len(code) if nl < 0 else nl + 1
            if (line.lstrip("\t") if strip else line) == delim:
                break
        return i


def _argv(words: list[Word]) -> list[Word]:
    """The words of a simple command from its name on (no assignments, no keywords)."""
    i = 0
    while i < len(words):
        w = words[i]
        if w.literal and w.text in _NOT_COMMANDS:
            return []
        if (w.literal and w.text in _KEYWORDS) or _NAME_EQ.match(w.text):
            i += 1
            continue
        break
    return words[i:]


@dataclass(frozen=True)
class Finding:
    offset: int  # in the code
    rule: Rule


def simple_commands(code: str) -> list[list[Word]]:
    """The simple commands of shell `code`, each from its name on (assignments and keywords
    dropped), those inside `$(...)` and pipelines included."""
    reader = _Reader(code)
    reader.read()
    return [argv for argv in map(_argv, reader.commands) if argv]


def scan(code: str) -> list[Finding]:
    """Every non-portable form in shell `code`, at the offset of its word."""
    found = []
    for argv in simple_commands(code):
        if not argv[0].literal:
            continue
        for index, rule in argv_findings([w.text for w in argv]):
            found.append(Finding(argv[index].start, rule))
    return sorted(set(found), key=lambda f: (f.offset, f.rule.id))


MARK_HINT = "or give the command `gnu_only: <reason>`"


def message(rule: Rule, hint: str = MARK_HINT) -> str:
    """What is wrong with the form, why, and what to write instead (one line)."""
    return f"not portable (Linux and macOS): `{rule.id}` {rule.why}; instead: {rule.instead} ({hint})"


def line_col(code: str, offset: int) -> tuple[int, int]:
    """1-based line and column of offset in code."""
    line = code.count("\n", 0, offset) + 1
    return line, offset - (code.rfind("\n", 0, offset) + 1) + 1


# --------------------------------------------------------------------------------------
# runbook check
# --------------------------------------------------------------------------------------
def _command_problems(cmd: Command) -> list[Problem]:
    if cmd.shell is None:
        return []
    found = scan(cmd.shell)
    loc: Loc
    if cmd.gnu_only is not None:
        if found:
            return []
        loc = cmd.loc_of("gnu_only") or cmd.loc or Loc("runbook_data")
        return [Problem(loc, "`gnu_only` is set but the command uses no GNU-only form "
                             "that the portability check knows: remove it")]
    problems = []
    for f in found:
        loc = cmd.anchor.text_at(f.offset, "shell") if cmd.anchor is not None else Loc("runbook_data")
        problems.append(Problem(loc, message(f.rule)))
    return problems


def check(cat: Catalog) -> list[Problem]:
    """Each non-portable form in a command, an operator input's sample or a command of its
    `how_to_find` (a `code span`), located; and each `gnu_only` that marks nothing."""
    problems = [p for cmd in cat.commands() for p in _command_problems(cmd)]
    for inp in cat.inputs.values():
        fields: list[tuple[str, str, int, str]] = [("sample", inp.sample, 0, "the gate substitutes it into commands")]
        fields += [("how_to_find", m.group(1), m.start(1), "readers paste it")
                   for m in re.finditer(r"`([^`\n]+)`", inp.how_to_find)]
        for key, text, base, hint in fields:
            for f in scan(text):
                loc = inp.anchor.text_at(base + f.offset, key) if inp.anchor is not None \
                    else Loc("runbook_data")
                problems.append(Problem(loc, message(f.rule, hint)))
    return problems
