"""The gate's pure parts (runbook.gate.run), without building the site or starting a sandbox."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from runbook.data.load import load_cached
from runbook.data.model import Catalog, OperatorInput
from runbook.gate import run as gate
from runbook.gate.snippets import Snippet
from runbook.site.annotation import Annotation

from .conftest import aws_cli_path

ROOT = Path(__file__).resolve().parent.parent


def _catalog() -> Catalog:
    cat = load_cached(ROOT / "runbook_data")
    extra = OperatorInput(description="A version of the lead handler.", how_to_find="Ask.",
                          sample="{lead_handler}:{env}")
    # A copy (its own scope cache) with one input whose sample uses placeholders.
    return dataclasses.replace(cat, inputs={**cat.inputs, "handler-version": extra}, _scopes={})


def _plan(snippets: list[Snippet]) -> gate.Plan:
    return gate.Plan(snippets, _catalog(), 0.0, "https://example.invalid/")


def _result(status: str, message: str = "", **kw) -> gate.Result:
    return gate.Result("docs/p.md", 3, "dev", "exec", status, "true", message, **kw)


def test_summary_counts_every_status_and_only_those() -> None:
    results = [_result(s) for s in ("passed", "passed", "failed", "skipped", "xfailed", "xpassed", "xfailed")]
    assert gate.summary(results) == {"passed": 2, "failed": 1, "skipped": 1, "xfailed": 2, "xpassed": 1}
    assert gate.summary([]) == {"passed": 0, "failed": 0, "skipped": 0, "xfailed": 0, "xpassed": 0}


def test_summary_line_counts_xfailed_as_passed_and_xpassed_as_failed() -> None:
    counts = {"passed": 2, "failed": 1, "skipped": 3, "xfailed": 4, "xpassed": 5}
    assert gate.summary_line(counts) == "6 passed, 6 failed, 3 skipped"
    assert gate.summary_line(gate.summary([])) == "0 passed, 0 failed, 0 skipped"


def test_result_key_and_line_text() -> None:
    r = _result("failed", "\n  exit status 254\nAn error occurred\n", origin="runbook_data/x.yaml:3")
    assert r.key == "docs/p.md:3[dev]"
    assert r.line_text() == "docs/p.md:3 [dev] exec: failed: exit status 254"
    assert _result("passed").line_text() == "docs/p.md:3 [dev] exec: passed: "


def test_runnable_text_fills_in_samples_with_their_placeholders_resolved() -> None:
    text = ("aws lambda get-function --function-name <handler-version>\n"
            "aws dynamodb get-item --key '{\"id\": {\"S\": \"<lead-id>\"}}' <no-such-input>\n")
    plan = _plan([])
    dev = Snippet("docs/p.md", 3, "dev", "bash", text)
    prod = Snippet("docs/p.md", 9, "prod", "bash", text)
    assert plan.runnable_text(dev) == (
        "aws lambda get-function --function-name kanjona-dev-lead-handler:dev\n"
        "aws dynamodb get-item --key '{\"id\": {\"S\": \"123\"}}' <no-such-input>\n"
    )
    first = plan.runnable_text(prod).splitlines()[0]
    assert first == "aws lambda get-function --function-name kanjona-prod-lead-handler:prod"


def test_runnable_text_in_an_unknown_environment_leaves_placeholders_as_fill_ins() -> None:
    s = Snippet("docs/p.md", 3, "staging", "bash", "echo <handler-version> <lead-id>\n")
    assert _plan([]).runnable_text(s) == "echo <lead_handler>:<env> 123\n"


def test_skip_reasons() -> None:
    assert gate._skip_reason(Snippet("docs/p.md", 1, "dev", "bash", "true\n")) is None
    assert gate._skip_reason(Snippet("docs/p.md", 1, "dev", "python", "pass\n")) is None
    assert gate._skip_reason(Snippet("docs/p.md", 1, "dev", "text", "X-Amzn-Trace-Id\n")) == (
        "not executable: language 'text'")
    skipped = Snippet("docs/p.md", 1, "dev", "bash", "true\n", Annotation(skip="needs a real account"))
    assert gate._skip_reason(skipped) == "needs a real account"
    # An annotation's reason wins over the language.
    assert gate._skip_reason(Snippet("docs/p.md", 1, "dev", "json", "{}\n", Annotation(skip="shown only"))) == (
        "shown only")


@pytest.mark.requires_aws_cli  # run() checks the CLI and starts a (static-only) lane
def test_run_reports_non_runnable_blocks_as_skipped_with_their_reason() -> None:
    """Only non-runnable blocks, static only: no sandbox, each block skipped with its reason, in page order."""
    snippets = [Snippet("docs/p.md", 1, "dev", "text", "x\n"),
                Snippet("docs/p.md", 5, "prod", "bash", "true\n", Annotation(skip="by hand", origin="d.yaml:2"))]
    results = gate.run(_plan(snippets), static_only=True, jobs=1, aws_cli=aws_cli_path())
    assert [(r.key, r.tier, r.status, r.message, r.origin) for r in results] == [
        ("docs/p.md:1[dev]", "extract", "skipped", "not executable: language 'text'", None),
        ("docs/p.md:5[prod]", "extract", "skipped", "by hand", "d.yaml:2"),
    ]


@pytest.mark.requires_aws_cli
def test_a_lane_that_ends_without_checking_its_blocks_is_never_a_green(monkeypatch) -> None:
    """A lane that dies of what it cannot report (not an Exception) leaves blocks without a
    result: the run is a gate error, not a shorter list of passes."""
    import threading

    def dies(self, p, s, static_only):  # type: ignore[no-untyped-def]
        raise SystemExit("the lane ended")

    died: list[type[BaseException] | None] = []
    hooked = threading.Event()  # the lane's thread ends after it told run() it ended

    def hook(args: threading.ExceptHookArgs) -> None:
        died.append(args.exc_type)
        hooked.set()

    monkeypatch.setattr(threading, "excepthook", hook)
    monkeypatch.setattr(gate.Lane, "check", dies)
    snippets = [Snippet("docs/p.md", 3, "dev", "bash", "true\n")]
    with pytest.raises(gate.GateError, match=r"1 block\(s\) were not checked, the first docs/p.md:3 \[dev\]"):
        gate.run(_plan(snippets), static_only=True, jobs=1, aws_cli=aws_cli_path())
    assert hooked.wait(30) and died == [SystemExit]


def test_tier_line_counts_what_was_run_per_environment() -> None:
    results = [
        gate.Result("docs/p.md", 1, "dev", "exec", "passed", "true", zsh=True),
        gate.Result("docs/p.md", 2, "dev", "exec", "xfailed", "true"),
        gate.Result("docs/p.md", 3, "dev", "static", "failed", "true"),
        gate.Result("docs/p.md", 4, "prod", "extract", "skipped", "true"),
        gate.Result("docs/p.md", 5, "prod", "static", "passed", "true"),
    ]
    assert gate.tier_line(results) == (
        "dev: 2 run (static+exec, 1 also under zsh), 1 static only, 0 skipped; "
        "prod: 0 run (static+exec), 1 static only, 1 skipped"
    )


def test_plan_close_removes_the_rendered_site_and_may_be_repeated(tmp_path: Path) -> None:
    import tempfile

    tmp = tempfile.TemporaryDirectory(dir=tmp_path)
    plan = gate.Plan([], _catalog(), 0.0, "https://example.invalid/", tmp)
    plan.close()
    plan.close()
    assert not Path(tmp.name).exists()


def test_a_lane_keeps_to_the_environments_it_has_a_world_for() -> None:
    from types import SimpleNamespace

    envs = ["dev"] * 3 + ["prod"] * 12
    work = gate._Work([(i, SimpleNamespace(env=env)) for i, env in enumerate(envs)])  # type: ignore[misc]
    one: set[str] = set()
    two: set[str] = set()
    three: set[str] = set()

    def take(worlds: set[str]) -> int | None:
        item = work.take(worlds)
        return None if item is None else item[0]

    assert take(one) == 3  # the largest environment no lane has a world of
    assert take(two) == 0  # then the other one, not the larger that a lane already has
    assert (one, two) == ({"prod"}, {"dev"})
    assert [take(two), take(two)] == [1, 2]  # its own, in the order given
    # Its environment done, a lane joins another where enough is left: 11 for one lane.
    assert take(two) == 4 and two == {"dev", "prod"}
    assert take(one) == 5
    # 9 left for two lanes: not worth a third lane's seed.
    assert take(three) is None and three == set()
    assert [take(one) for _ in range(9)] == list(range(6, 15))
    assert take(one) is None and take(two) is None
