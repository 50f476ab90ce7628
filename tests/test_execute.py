"""The execution tier: snippets run for real in the sandbox and are judged on what they did."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runbook.gate.sandbox.sandbox import EnvCredentials, RunResult, Sandbox
from runbook.gate.verdict import Verdict, json_documents, judge
from runbook.site.annotation import Annotation

from .conftest import require_aws_cli, require_isolation

AWS_CLI = os.environ.get("RUNBOOK_AWS_CLI", "/usr/bin/aws")
TESTS = Path(__file__).resolve().parent
REGION = "us-east-1"
DEV = EnvCredentials("dev", "123456789012", REGION, "AKIAEXECUTETEST00001", "secret")


def ok(stdout: str = "", **kw) -> RunResult:
    return RunResult(**{"rc": 0, "stdout": stdout, "stderr": "", "seconds": 0.1, "timed_out": False,
                        **kw})


# -- judge, on made-up results -------------------------------------------------------------


def test_exit_status_and_stderr_tail():
    err = "\n".join(f"line {i}" for i in range(10)) + "\nAn error occurred (ResourceNotFoundException)"
    v = judge(ok(rc=254, stderr=err), Annotation())
    assert v.status == "failed"
    assert "exit status 254" in v.message and "ResourceNotFoundException" in v.message
    assert "line 4" not in v.message  # only the last lines
    assert judge(ok(), Annotation()).status == "passed"


def test_a_limit_is_named_and_a_long_line_is_shortened():
    v = judge(ok(rc=153, stderr="x" * 5000 + "\n"), Annotation())
    assert "exit status 153 (SIGXFSZ: a file grew past the limit of 64 MiB)" in v.message
    assert "[4,700 more characters]" in v.message and len(v.message) < 500
    assert "exit status 137 (SIGKILL)" in judge(ok(rc=137), Annotation()).message
    assert "exit status -9 (SIGKILL)" in judge(ok(rc=-9), Annotation()).message
    assert "exit status 3:" not in judge(ok(rc=3), Annotation()).message  # no signal to name
    flood = judge(ok(rc=-9, over_limit=True), Annotation())
    assert flood.status == "failed" and "more than 16 MiB of output" in flood.message


def test_function_error_fails_despite_exit_zero():
    out = '{\n    "StatusCode": 200,\n    "FunctionError": "Handled",\n    "ExecutedVersion": "$LATEST"\n}\n'
    v = judge(ok(out), Annotation())
    assert v.status == "failed" and "FunctionError" in v.message and "Handled" in v.message


def test_expect_jmespath_and_json_path():
    out = '{"Table": {"TableStatus": "ACTIVE", "Items": []}}\n'
    assert judge(ok(out), Annotation(expect=("Table.TableStatus",))).status == "passed"
    assert judge(ok(out), Annotation(expect=("$.Table.TableStatus",))).status == "passed"
    v = judge(ok(out), Annotation(expect=("Table.Items", "Table.Missing")))
    assert v.status == "failed"
    assert "'Table.Items': empty (got [])" in v.message and "'Table.Missing'" in v.message
    v = judge(ok("not json\n"), Annotation(expect=("a",)))
    assert v.status == "failed" and "no JSON" in v.message
    v = judge(ok(out), Annotation(expect=("Table[",)))
    assert v.status == "failed" and "not a valid JMESPath" in v.message


def test_expect_across_several_printed_documents():
    out = 'Waiting...\n{"QueueUrls": []}\n{"Attributes": {"ApproximateNumberOfMessages": "0"}}\n'
    assert len(json_documents(out)) == 2
    exp = Annotation(expect=("Attributes.ApproximateNumberOfMessages",))
    assert judge(ok(out), exp).status == "passed"
    assert judge(ok(out), Annotation(expect=("QueueUrls",))).status == "failed"


def test_stream_is_judged_by_output():
    stopped = dict(rc=124, timed_out=True, seconds=3.0)
    assert judge(ok("event 1\n", **stopped), Annotation(stream=True)).status == "passed"
    v = judge(ok("", **stopped), Annotation(stream=True))
    assert v.status == "failed" and "printed nothing" in v.message
    v = judge(ok("event 1\n", **stopped), Annotation())
    assert v.status == "failed" and "timed out" in v.message


def test_xfail_and_xpass():
    v = judge(ok(rc=1, stderr="moto: Not implemented yet"), Annotation(xfail="moto gap"))
    assert v.status == "xfailed" and "moto gap" in v.message and "Not implemented" in v.message
    v = judge(ok(), Annotation(xfail="moto gap"))
    assert v.status == "xpassed" and "moto gap" in v.message


# -- for real, in the sandbox ------------------------------------------------------------------


def run_and_judge(sb: Sandbox, lang: str, code: str, env: str, exp: Annotation) -> Verdict:
    """Run one block as the gate does and judge it."""
    return judge(sb.run(lang, code, env, timeout=exp.timeout, stream=exp.stream), exp)


@pytest.fixture(scope="module")
def sb():
    # Missing CLI or namespaces: a failure when RUNBOOK_AWS_CLI is set, else a skip (conftest).
    require_aws_cli()
    require_isolation("netns")
    with Sandbox(AWS_CLI, python_path=[TESTS]) as box:
        box.set_credentials(DEV)
        yield box


@pytest.fixture
def clean(sb):
    yield sb
    sb.reset()
    sb.set_credentials(DEV)


def test_lambda_invoke_without_docker_fails_on_function_error(clean):
    clean.call("sandbox_helpers:create_docker_lambda", name="orders-api", region=REGION)
    code = ("aws lambda invoke --function-name orders-api --payload '{}' "
            "--cli-binary-format raw-in-base64-out response.json\ncat response.json")
    v = run_and_judge(clean, "bash", code, "dev", Annotation())
    assert v.result.rc == 0  # the CLI itself is happy
    assert v.status == "failed" and "FunctionError" in v.message


def test_timeout_kills_the_snippet_promptly(sb):
    v = run_and_judge(sb, "bash", "echo started\nsleep 100", "dev", Annotation(timeout=1.0))
    # Stopped by the timeout path (status 124, timed_out), not by `sleep 100` ending (status 0).
    assert (v.result.rc, v.result.timed_out, v.result.stdout) == (124, True, "started\n")
    # ... and nothing of it is left running.
    left = sb.run("bash", "ps -e -o args= | grep -c '^sleep 100$' || true", "dev")
    assert left.stdout == "0\n", left.stdout
    assert v.status == "failed" and "timed out" in v.message


def test_follow_stream_is_judged_by_what_it_printed(clean):
    clean.call("sandbox_helpers:put_log_lines", group="/kanjona/api",
               lines=["ERROR payment declined", "INFO retry scheduled"], region=REGION)
    v = run_and_judge(clean, "bash", "aws logs tail /kanjona/api --follow --format short", "dev",
                      Annotation(stream=True, timeout=30.0))
    # Stopped once it had printed and gone quiet, not at its timeout.
    assert v.result.timed_out and v.result.settled
    assert "ERROR payment declined" in v.result.stdout and "INFO retry scheduled" in v.result.stdout
    assert v.status == "passed", v.message
    # A stream that keeps printing is not quiet: it runs to its timeout, judged on what it printed.
    v = run_and_judge(clean, "bash", "while :; do echo tick; sleep 0.05; done", "dev",
                      Annotation(stream=True, timeout=1.5))
    assert v.result.timed_out and not v.result.settled and v.status == "passed"
    # Only streams stop early: a command that pauses after a line runs to its end.
    v = run_and_judge(clean, "bash", "echo first; sleep 1; echo second", "dev", Annotation(timeout=10.0))
    assert v.result.stdout == "first\nsecond\n" and v.status == "passed"
    v = run_and_judge(clean, "bash", "sleep 30", "dev", Annotation(stream=True, timeout=0.5))
    assert v.status == "failed" and "printed nothing" in v.message


def test_expect_fails_on_an_empty_list_from_moto(clean):
    code = "aws dynamodb list-tables"
    v = run_and_judge(clean, "bash", code, "dev", Annotation(expect=("TableNames",)))
    assert v.result.rc == 0 and '"TableNames": []' in v.result.stdout
    assert v.status == "failed" and "'TableNames': empty" in v.message


def test_xfail_against_real_runs(sb):
    exp = Annotation(xfail="known moto gap")
    assert run_and_judge(sb, "bash", "exit 3", "dev", exp).status == "xfailed"
    v: Verdict = run_and_judge(sb, "python", "print('fine')", "dev", exp)
    assert v.status == "xpassed"
