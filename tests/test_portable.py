"""Commands that work on Linux and macOS: each GNU-only (or BSD-only) form is a located error,
the portable rewrite passes, `gnu_only: <reason>` lets a deliberate one through, and nothing in
the current data or pages uses one."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from runbook.cli import main
from runbook.data import portable
from runbook.data.model import Command
from runbook.gate.static import shell
from runbook.gate.static.checker import StaticChecker
from runbook.site.annotation import Annotation, AnnotationError

from .conftest import require_aws_cli

ROOT = Path(__file__).resolve().parent.parent

# rule id → (GNU-only or BSD-only command, column of the offending word, a form both accept)
CASES: dict[str, tuple[str, int, str]] = {
    "date -d": ("aws logs filter-log-events --start-time $(date -d '1 hour ago' +%s000)", 48,
                "aws logs filter-log-events --start-time $(( ($(date +%s) - 3600) * 1000 ))"),
    "date -v": ("date -v-1H +%s", 6, "echo $(( $(date +%s) - 3600 ))"),
    "date -I": ("date -Iseconds", 6, "date -u +%Y-%m-%dT%H:%M:%SZ"),
    "date +%N": ("echo $(date +%s%3N)", 13, "echo $(( $(date +%s) * 1000 ))"),
    "sed -i": ("sed -i 's/a/b/' f.txt", 5, "sed -i.bak 's/a/b/' f.txt && rm f.txt.bak"),
    "sed -r": ("sed -r 's/(a)+/b/' f.txt", 5, "sed -E 's/(a)+/b/' f.txt"),
    "grep -P": ("aws logs tail g | grep -oP '\\d+'", 24, "aws logs tail g | grep -oE '[0-9]+'"),
    "xargs -r": ("printf '%s\\n' \"$ids\" | xargs -r -n1 echo", 30,
                 "[ -n \"$ids\" ] && printf '%s\\n' \"$ids\" | xargs -n1 echo"),
    "xargs -d": ("cat ids | xargs -d '\\n' echo", 17, "cat ids | tr '\\n' '\\0' | xargs -0 echo"),
    "base64 -w": ("base64 -w0 payload.json", 8, "base64 < payload.json | tr -d '\\n'"),
    "base64 -d": ("echo aGk= | base64 -d", 20, "echo aGk= | base64 --decode"),
    "stat -c": ("stat -c %s dump.json", 6, "wc -c < dump.json"),
    "readlink -f": ("readlink -f ./x", 10, "(cd \"$(dirname ./x)\" && pwd -P)"),
    "find -printf": ("find . -name '*.json' -printf '%s %p\\n'", 23, "find . -name '*.json' -exec ls -l {} +"),
    "cp --parents": ("cp --parents a/b.txt out/", 4, "mkdir -p out/a && cp a/b.txt out/a/b.txt"),
}


def ids(code: str) -> list[tuple[int, int, str]]:
    return [(*portable.line_col(code, f.offset), f.rule.id) for f in portable.scan(code)]


def test_every_rule_has_a_case() -> None:
    assert sorted(CASES) == sorted(r.id for r in portable.RULES)
    assert len({r.id for r in portable.RULES}) == len(portable.RULES), "each rule is defined once"


@pytest.mark.parametrize("rule", sorted(CASES))
def test_rule_fires_at_its_word_and_the_rewrite_passes(rule: str) -> None:
    bad, col, good = CASES[rule]
    assert ids(bad) == [(1, col, rule)]
    assert ids(good) == []
    message = portable.message(next(r for r in portable.RULES if r.id == rule))
    assert f"`{rule}`" in message and "instead: " in message and "gnu_only: <reason>" in message


@pytest.mark.parametrize(("code", "expected"), [
    # quotes, comments and here-documents are not commands
    ("echo 'date -d x' \"sed -i x\"  # date -d x", []),
    ("cat <<EOF\ndate -d x\nEOF\ndate -d y", [(4, 6, "date -d")]),
    ("cat <<-'END'\n\tgrep -P x\n\tEND\n", []),
    # options that take a value, attached suffixes, `--`
    ("grep -e -P x f", []),
    ("date -f -d", []),
    ("sed -ni.orig p f", []),
    ("sed -n -i p f", [(1, 8, "sed -i")]),
    ("sed -i '' 's/a/b/' f", [(1, 5, "sed -i")]),
    ("sed --in-place=.bak 's/a/b/' f", [(1, 5, "sed -i")]),
    ("grep -- -P f", []),
    ("date -u +%Y-%m-%dT%H:%M:%SZ", []),
    # inside substitutions, pipelines, lists, loops and wrappers
    ("x=$(echo \"$(date --date=yesterday +%F)\")", [(1, 18, "date -d")]),
    ("echo `date -d now`", [(1, 12, "date -d")]),
    ("diff <(sed -r s/a/b/ f) g", [(1, 12, "sed -r")]),
    ("true && grep -P x f || sudo -u me readlink -f y; env TZ=UTC date -d z",
     [(1, 14, "grep -P"), (1, 44, "readlink -f"), (1, 66, "date -d")]),
    ("for f in *.txt; do\n  sed -i s/a/b/ \"$f\"\ndone", [(2, 7, "sed -i")]),
    ("ls | xargs -I{} sed -i s/a/b/ {}", [(1, 21, "sed -i")]),
    ("aws s3 ls \\\n  | grep -P x >/dev/null 2>&1", [(2, 10, "grep -P")]),
    ("a=$(( ($(date +%s) - 3600) * 1000 ))", []),
    # the option of another tool, a tool name in an argument, a variable command
    ("aws logs tail g --since 1h -d", []),
    ("echo date -d", []),
    ("$tool -d x", []),
    ("[[ -d /tmp ]] && test -d /tmp", []),
])
def test_reading_shell_text(code: str, expected: list[tuple[int, int, str]]) -> None:
    assert ids(code) == expected


# ------------------------------------------------------------------ runbook check (the data)


def project(tmp_path: Path) -> Path:
    data = tmp_path / "runbook_data"
    shutil.copytree(ROOT / "runbook_data", data, ignore=shutil.ignore_patterns("schema"))
    return data


def edit(path: Path, old: str, new: str) -> int:
    """Replace the first `old` in path with `new`; the 1-based line it starts on."""
    text = path.read_text(encoding="utf-8")
    at = text.index(old)
    path.write_text(text[:at] + new + text[at + len(old):], encoding="utf-8")
    return text.count("\n", 0, at) + 1


def check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) \
        -> tuple[int, list[str]]:
    monkeypatch.chdir(tmp_path)
    code = main(["--data", "runbook_data", "check"])
    err = capsys.readouterr().err
    return code, [line for line in err.splitlines() if "problem(s) found" not in line
                  and not line.startswith("runbook_data/escalation.yaml") and "warning(s)" not in line]


LOGS = "              --start-time $(( ($(date +%s) - 3600) * 1000 ))"


def test_check_locates_a_gnu_only_form_at_its_yaml_column(tmp_path, monkeypatch, capsys) -> None:
    data = project(tmp_path)
    line = edit(data / "procedures/debugging.yaml", LOGS,
                "              --start-time $(date -d '1 hour ago' +%s000)")
    code, lines = check(tmp_path, monkeypatch, capsys)
    assert code == 1
    assert lines == [f"runbook_data/procedures/debugging.yaml:{line}:35: "
                     + portable.message(next(r for r in portable.RULES if r.id == "date -d"))]


def test_gnu_only_with_a_reason_lets_it_pass(tmp_path, monkeypatch, capsys) -> None:
    data = project(tmp_path)
    edit(data / "procedures/debugging.yaml", LOGS,
         "              --start-time $(date -d '1 hour ago' +%s000)\n"
         "          gnu_only: the GNU date of the bastion host is what runs it")
    code, lines = check(tmp_path, monkeypatch, capsys)
    assert (code, lines) == (0, [])


def test_gnu_only_without_a_reason_is_a_located_error(tmp_path, monkeypatch, capsys) -> None:
    data = project(tmp_path)
    line = edit(data / "procedures/debugging.yaml", LOGS,
                "              --start-time $(date -d '1 hour ago' +%s000)\n"
                "          gnu_only: \"  \"") + 1
    code, lines = check(tmp_path, monkeypatch, capsys)
    assert code == 1
    assert lines == [f"runbook_data/procedures/debugging.yaml:{line}:21: gnu_only: value error, give the "
                     "reason the command cannot be written for both GNU and BSD/macOS, got '  '"]


def test_gnu_only_on_a_portable_command_must_go(tmp_path, monkeypatch, capsys) -> None:
    data = project(tmp_path)
    line = edit(data / "procedures/debugging.yaml", LOGS, LOGS + "\n          gnu_only: it used to need GNU date") + 1
    code, lines = check(tmp_path, monkeypatch, capsys)
    assert code == 1
    assert lines == [f"runbook_data/procedures/debugging.yaml:{line}:21: `gnu_only` is set but the command "
                     "uses no GNU-only form that the portability check knows: remove it"]


def test_input_samples_and_how_to_find_are_checked(tmp_path, monkeypatch, capsys) -> None:
    data = project(tmp_path)
    inputs = data / "inputs.yaml"
    line = edit(inputs, 'sample: "$(( $(date +%s) - 600 ))"',
                "sample: \"$(date -u -d '10 minutes ago' +%Y-%m-%dT%H:%M:%SZ)\"")
    how = edit(inputs, "how_to_find: Just before the bad write or deletion, from the application logs or CloudTrail.",
               "how_to_find: \"`date -Iseconds`, just before the bad write or deletion\"")
    code, lines = check(tmp_path, monkeypatch, capsys)
    assert code == 1
    rule = {r.id: r for r in portable.RULES}
    assert lines == [
        f"runbook_data/inputs.yaml:{how}:25: " + portable.message(rule["date -I"], "readers paste it"),
        f"runbook_data/inputs.yaml:{line}:24: "
        + portable.message(rule["date -d"], "the gate substitutes it into commands"),
    ]


def test_no_command_of_the_current_data_or_pages_uses_a_non_portable_form(capsys) -> None:
    # The whole check (the portability rules are part of it) passes on the project's data...
    assert main(["--data", str(ROOT / "runbook_data"), "check"]) == 0
    assert "not portable" not in capsys.readouterr().err
    # ...and the hand-written commands of the pages (the `command` macro) use none either.
    for page in sorted((ROOT / "docs").rglob("*.md")):
        for m in re.finditer(r"command\('((?:[^'\\]|\\.)*)'", page.read_text(encoding="utf-8")):
            assert portable.scan(m.group(1)) == [], f"{page}: {m.group(1)}"


# ------------------------------------------------------------------ the gate's static tier


def test_the_page_marker_carries_gnu_only() -> None:
    from runbook.data.load import load_cached
    from runbook.site import render

    cat = load_cached(ROOT / "runbook_data")
    text = render.command_markdown(cat, Command.model_validate(
        {"shell": "date -d yesterday", "gnu_only": "the reason"}))
    assert '"gnu_only": "the reason"' in text
    assert "gnu_only" not in render.command_markdown(cat, Command.model_validate({"shell": "date +%s"}))
    assert Annotation.parse('{"gnu_only": "why"}', "p.md:3").gnu_only == "why"
    with pytest.raises(AnnotationError, match=r"p\.md:3: runbook annotation 'gnu_only' must be the reason"):
        Annotation.parse('{"gnu_only": ""}', "p.md:3")


def test_the_expansion_records_each_tool_call() -> None:
    data = (b"CALL\x002\x002\x00sts\x00get-caller-identity\x00"
            b"TOOL\x003\x003\x00date\x00-d\x00now\x00")
    assert shell.parse_records(data) == [("CALL", 2, ("sts", "get-caller-identity")),
                                         ("TOOL", 3, ("date", "-d", "now"))]
    assert shell.parse_calls(data) == [(2, ("sts", "get-caller-identity"))]
    assert "__GATE_RECORD" in shell.PRELUDE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def checker():
    with StaticChecker(require_aws_cli()) as c:
        yield c


def test_gate_reports_the_line_and_column(checker) -> None:
    code = ("aws logs filter-log-events --log-group-name /aws/lambda/x \\\n"
            "  --start-time $(date -d '1 hour ago' +%s000)\n")
    problems, calls = checker.check_shell(code)
    rule = next(r for r in portable.RULES if r.id == "date -d")
    assert [(p.line, p.message) for p in problems] == [(2, f"col 23: {portable.message(rule)}")]
    assert len(calls) == 1
    assert checker.check_shell(code, portable=False)[0] == []


def test_gate_sees_an_option_a_variable_holds(checker) -> None:
    code = "opt=-P\nlines=$(printf 'a1\\n' | grep $opt '\\d')\necho \"$lines\"\n"
    problems, _ = checker.check_shell(code)
    rule = next(r for r in portable.RULES if r.id == "grep -P")
    assert [(p.line, p.message) for p in problems] == [
        (2, f"{portable.message(rule)} (as expanded: grep -P \\d)")]


def test_gate_passes_the_rewrites_and_the_cli_takes_epoch_seconds(checker) -> None:
    code = (
        "aws cloudwatch get-metric-statistics --namespace AWS/Lambda --metric-name Errors \\\n"
        "  --start-time $(( $(date +%s) - 3600 )) --end-time $(date +%s) --period 60 --statistics Sum\n"
        "aws logs filter-log-events --log-group-name /aws/lambda/x \\\n"
        "  --start-time $(( ($(date +%s) - 3600) * 1000 ))\n"
        "echo '{\":since\": {\"S\": \"'$(TZ=UTC+24 date +%Y-%m-%d)'\"}}'\n"
    )
    problems, calls = checker.check_shell(code)
    assert problems == []
    assert [c.operation for c in calls] == ["GetMetricStatistics", "FilterLogEvents"]
    start, end = int(calls[0].argv[7]), int(calls[0].argv[9])
    assert end - start == 3600
    millis = calls[1].argv[5]
    assert millis.endswith("000") and abs(int(millis) // 1000 - start) <= 1


def test_busybox_replays_each_tool_call_and_catches_what_the_rules_miss(checker) -> None:
    from runbook.gate.static.userland import BUSYBOX

    assert BUSYBOX, "busybox is missing: scripts/bootstrap.sh installs it"
    # Not in the rule list: GNU date --rfc-email and sed -z (BSD has neither), one hidden in a variable.
    for code in ("date --rfc-email", "opt=-z; sed $opt 's/a/b/' /dev/null"):
        assert not portable.scan(code)
        problems, _ = checker.check_shell(code)
        assert len(problems) == 1 and "rejected by another userland (busybox:" in problems[0].message, problems
        assert problems[0].line == 1
        assert checker.check_shell(code, portable=False)[0] == []  # gnu_only: deliberate
    # A form the rules know is reported once, by the rule.
    problems, _ = checker.check_shell("date -d '1 hour ago' +%s")
    assert len(problems) == 1 and "`date -d`" in problems[0].message
    # What both take passes.
    for code in ("date +%s", "date -u +%Y-%m-%dT%H:%M:%SZ", "echo a | grep -E '[a]'", "TZ=UTC+24 date +%Y-%m-%d"):
        assert checker.check_shell(code)[0] == [], code


def test_an_argv_busybox_answered_is_not_replayed_again(checker, monkeypatch) -> None:
    """The same argv gets the same answer (empty stdin, empty folder): a block whose calls were
    all replayed before starts no replay, and reports the same."""
    from runbook.gate.static import userland

    monkeypatch.setattr(userland, "_ANSWERS", {})
    replays: list[list[tuple[str, ...]]] = []
    real = userland._replay
    monkeypatch.setattr(userland, "_replay", lambda argvs, scratch: replays.append(argvs) or real(argvs, scratch))
    code = "date --rfc-email\ndate +%s\ndate --rfc-email"
    first, _ = checker.check_shell(code)
    assert [p.line for p in first] == [1, 3] and "busybox:" in first[0].message
    assert replays == [[("date", "--rfc-email"), ("date", "+%s")]]  # each argv once
    assert checker.check_shell(code)[0] == first and len(replays) == 1  # answered: no replay
    checker.check_shell("date +%s\nsed -z 's/a/b/' /dev/null")
    assert replays[1] == [("sed", "-z", "s/a/b/", "/dev/null")]  # only what is new
    monkeypatch.setattr(userland, "MAX_ANSWERS", 1)
    checker.check_shell("grep -E a /dev/null")
    assert len(userland._ANSWERS) <= 2  # bounded: emptied when full
