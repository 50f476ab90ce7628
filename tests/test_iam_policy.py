"""The on-call IAM policy: generated from the blocks the gate runs, exactly what they need
(nothing more), scoped to the inventory's ARNs, exported for Terraform and CloudFormation, and
proved by the gate, which runs every block as a user holding only that policy."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from runbook.access.levels import action_of
from runbook.access.operations import operations
from runbook.access.policy import ROLES, moto_policy, policy, render, resource_arns
from runbook.cli import main
from runbook.gate import run as gate

from .conftest import ROOT
from .test_verify_cli import verify


@pytest.fixture(scope="module")
def plan() -> gate.Plan:
    p = gate.plan(ROOT / "mkdocs.yml")
    yield p
    p.close()


def _actions(document: dict) -> set[str]:
    return {a for s in document["Statement"] for a in s["Action"]}


def _used(plan: gate.Plan, env: str, role: str) -> set[str]:
    """What the blocks call, independently of the policy module: every known call's action."""
    used = set()
    for lang, code in gate.policy_blocks(plan, env):
        for op in operations(lang, code):
            action = action_of(op)
            if action is not None and (role == "write" or action.reads):
                used.add(action.name)
    return used


def excess(document: dict, used: set[str]) -> set[str]:
    """Actions a policy grants that no block uses (wildcards count as excess)."""
    return {a for a in _actions(document) if a not in used or "*" in a}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("env", ["dev", "prod"])
def test_the_policy_grants_exactly_what_the_blocks_use(plan: gate.Plan, env: str, role: str) -> None:
    document = policy(plan.catalog, env, role, gate.policy_blocks(plan, env))
    used = _used(plan, env, role)
    assert _actions(document) == used and excess(document, used) == set()
    if role == "read":
        assert "lambda:UpdateAlias" not in used and "lambda:GetAlias" in used
    else:
        assert {"lambda:UpdateAlias", "lambda:UpdateFunctionConfiguration", "dynamodb:UpdateTable"} <= used
    # Over-broad on purpose: the check catches it.
    broad = json.loads(json.dumps(document))
    broad["Statement"][0]["Action"].append("lambda:DeleteFunction")
    assert excess(broad, used) == {"lambda:DeleteFunction"}


def test_resources_are_the_environments_arns_where_the_action_allows(plan: gate.Plan) -> None:
    document = policy(plan.catalog, "prod", "write", gate.policy_blocks(plan, "prod"))
    by_action = {a: s["Resource"] for s in document["Statement"] for a in s["Action"]}
    account = plan.catalog.env("prod").account
    assert by_action["lambda:UpdateAlias"] == [
        f"arn:aws:lambda:us-east-1:{account}:function:kanjona-prod-lead-handler",
        f"arn:aws:lambda:us-east-1:{account}:function:kanjona-prod-lead-handler:*",
        f"arn:aws:lambda:us-east-1:{account}:function:kanjona-prod-dlq-replay",
        f"arn:aws:lambda:us-east-1:{account}:function:kanjona-prod-dlq-replay:*",
    ]
    assert by_action["xray:GetTraceSummaries"] == ["*"]  # no resource-level scoping in IAM
    arns = resource_arns(plan.catalog, "prod")
    global_arns = ("arn:aws:s3:::", "arn:aws:apigateway:", "arn:aws:route53:::")  # no account in them
    for action, resources in by_action.items():
        assert all(r == "*" or account in r or r.startswith(global_arns) for r in resources), action
        assert not any("dev" in r for r in resources), action
    assert all("kanjona-prod" in a or "/apis" in a or "distribution/*" in a for a in arns)


def test_moto_sees_the_same_actions_under_its_own_names(plan: gate.Plan) -> None:
    document = moto_policy(plan.catalog, "prod", "read", gate.policy_blocks(plan, "prod"))
    names = _actions(document)
    assert "monitoring:DescribeAlarms" in names  # CloudWatch requests are signed "monitoring"
    assert "apigateway:GetApis" in names and "lambda:GetAlias" in names
    assert "lambda:UpdateAlias" not in names
    resources = {a: s["Resource"] for s in document["Statement"] for a in s["Action"]}
    # moto compares the queue's ARN only for requests that carry its URL.
    assert all(r.startswith("arn:aws:sqs:") for r in resources["sqs:GetQueueAttributes"])
    assert resources["sqs:GetQueueUrl"] == ["*"] and resources["logs:FilterLogEvents"] == ["*"]


def test_iam_policy_command_and_its_exports(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("NO_MKDOCS_2_WARNING", "1")
    out = tmp_path / "read.json"
    assert main(["iam-policy", "--env", "prod", "--role", "read", "--out", str(out)]) == 0
    document = json.loads(out.read_text(encoding="utf-8"))
    assert document["Version"] == "2012-10-17" and document["Statement"]
    tf = tmp_path / "policy.tf.json"
    assert main(["iam-policy", "--env", "prod", "--role", "write", "--format", "terraform", "--out", str(tf)]) == 0
    block = json.loads(tf.read_text(encoding="utf-8"))["data"]["aws_iam_policy_document"]["kanjona_prod_oncall_write"]
    assert {"sid", "effect", "actions", "resources"} == set(block["statement"][0])
    cfn = tmp_path / "policy.cfn.json"
    assert main(["iam-policy", "--env", "prod", "--format", "cloudformation", "--out", str(cfn)]) == 0
    lint = subprocess.run([str(Path(shutil.which("cfn-lint") or ROOT / ".venv/bin/cfn-lint")), str(cfn)],
                          capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert render(document, "prod", "read", "json") == out.read_text(encoding="utf-8")
    capsys.readouterr()
    assert main(["iam-policy", "--env", "staging"]) == 1
    assert "runbook_data/environments.yaml:" in capsys.readouterr().err


@pytest.mark.gate
def test_a_block_needing_an_action_the_policy_lacks_fails_with_the_action(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(ROOT / "docs", docs)
    # The analysis cannot name a call held in a variable: the policy lacks it, moto refuses it.
    (docs / "p.md").write_text("# P\n\n```bash\nsvc=sqs\naws $svc list-queues\n```\n", encoding="utf-8")
    proc = verify("--docs", "docs", "--page", "p.md", "--env", "dev", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout.startswith(
        "docs/p.md:3 [dev] exec: failed: needs sqs:ListQueues, which the on-call write policy of dev does not "
        "grant (runbook iam-policy --env dev --role write): "), proc.stdout
