"""Exported alarm definitions are real: cfn-lint, Terraform, moto accept them; every link reaches a page."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import boto3
import pytest
from cfnlint.api import ManualArgs, lint_file
from moto import mock_aws

from runbook.cli import main
from runbook.data import alarm_text, placeholders
from runbook.data.load import load
from runbook.errors import RunbookError
from runbook.export import alarms as export
from runbook.export.fsio import write_atomic
from runbook.site.build import site_url

from .conftest import ROOT, BuiltSite

CATALOG = load(ROOT / "runbook_data")
ENVS = [e.name for e in CATALOG.environments]
SITE_URL = site_url(ROOT / "mkdocs.yml")
FORMATS = {"terraform": "alarms.tf.json", "cloudformation": "alarms.template.json"}
# Every argument of aws_cloudwatch_metric_alarm the export may write (provider v5 names).
TF_ARGS = {
    "actions_enabled", "alarm_actions", "alarm_description", "alarm_name", "comparison_operator",
    "datapoints_to_alarm", "dimensions", "evaluation_periods", "extended_statistic", "metric_name",
    "metric_query", "namespace", "ok_actions", "period", "statistic", "threshold", "treat_missing_data", "unit",
}
TF_PLUGIN_DIR = Path(os.environ.get("RUNBOOK_TF_PLUGIN_DIR", "/opt/tf-plugins"))


def export_cli(tmp_path: Path, env: str, fmt: str, *extra: str) -> Path:
    out = tmp_path / env / FORMATS[fmt]
    assert main([*extra, "export-alarms", "--env", env, "--format", fmt, "--out", str(out)]) == 0
    return out


def test_descriptions_fit_cloudwatch_and_name_the_page() -> None:
    longest = 0
    for env in ENVS:
        for a, kw in zip(CATALOG.alarms, export.put_metric_alarm_kwargs(CATALOG, env, SITE_URL), strict=True):
            summary, link = kw["AlarmDescription"].split("\n")
            assert summary == " ".join(a.summary.split())
            assert link == f"Runbook: {SITE_URL}alarms/{a.id}/?env={env}"
            longest = max(longest, len(kw["AlarmDescription"]))
    assert longest <= alarm_text.MAX_DESCRIPTION
    print(f"{len(CATALOG.alarms)} alarms per environment; longest AlarmDescription: {longest} characters")


def test_kwargs_resolve_names_thresholds_topics_and_dimensions_per_environment() -> None:
    for env in CATALOG.environments:
        scope = {**CATALOG.scope(env.name), "api.id": "a1b2c3d4"}
        deployed = {"api.id": "a1b2c3d4"}
        for a, kw in zip(
            CATALOG.alarms, export.put_metric_alarm_kwargs(CATALOG, env.name, SITE_URL, deployed), strict=True
        ):
            assert kw["AlarmName"] == a.name.replace("{env}", env.name)
            topic = f"arn:aws:sns:{env.region}:{env.account}:{env.alarm_topics[a.severity]}"
            assert kw["AlarmActions"] == kw["OKActions"] == [topic]
            expected = env.values[a.threshold.strip("{}")] if isinstance(a.threshold, str) else a.threshold
            assert kw["Threshold"] == expected
            assert ("Metrics" in kw) == bool(a.metrics) and ("MetricName" in kw) == (a.metric is not None)
            assert not list(placeholders.find(json.dumps(kw))), f"unresolved placeholder in {a.id}"
            if a.metric:
                assert kw["Dimensions"] == [
                    {"Name": k, "Value": scope[v.strip("{}")] if v.startswith("{") else v}
                    for k, v in a.metric.dimensions.items()
                ]


@pytest.mark.parametrize("env", ENVS)
def test_cloudformation_template_passes_cfn_lint(tmp_path: Path, env: str) -> None:
    out = export_cli(tmp_path, env, "cloudformation")
    template = json.loads(out.read_text(encoding="utf-8"))
    resources = template["Resources"]
    assert len(resources) == len(CATALOG.alarms)
    assert all(re.fullmatch(r"[A-Z][A-Za-z0-9]*", rid) for rid in resources)
    assert {r["Type"] for r in resources.values()} == {"AWS::CloudWatch::Alarm"}
    matches = lint_file(out, config=ManualArgs(regions=[CATALOG.env(env).region]))
    assert not matches, "\n".join(str(m) for m in matches)


@pytest.mark.parametrize("env", ENVS)
def test_terraform_json_has_one_alarm_resource_per_alarm(tmp_path: Path, env: str) -> None:
    doc = json.loads(export_cli(tmp_path, env, "terraform").read_text(encoding="utf-8"))
    assert set(doc) == {"//", "resource", "variable"} and set(doc["resource"]) == {"aws_cloudwatch_metric_alarm"}
    alarms = doc["resource"]["aws_cloudwatch_metric_alarm"]
    assert sorted(alarms) == sorted(a.id.replace("-", "_") for a in CATALOG.alarms)
    for a in CATALOG.alarms:
        res = alarms[a.id.replace("-", "_")]
        assert set(res) <= TF_ARGS, f"{a.id}: unknown arguments {set(res) - TF_ARGS}"
        assert res["alarm_name"] == f"kanjona-{env}-{a.id}"
        if a.metrics:
            assert [q["id"] for q in res["metric_query"]] == [q.id for q in a.metrics]
            assert sum(q["return_data"] for q in res["metric_query"]) == 1
            assert "metric_name" not in res and "period" not in res
        else:
            assert isinstance(res["dimensions"], dict) and ("statistic" in res) != ("extended_statistic" in res)


def test_terraform_validate_accepts_the_export(tmp_path: Path) -> None:
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("terraform is not installed: the JSON structure is still checked above")
    if not TF_PLUGIN_DIR.is_dir():
        pytest.skip(f"no local provider mirror at {TF_PLUGIN_DIR} (set RUNBOOK_TF_PLUGIN_DIR): "
                    "the test never downloads providers")
    # -plugin-dir turns off every registry download; no checkpoint call, no user CLI config.
    env = {**os.environ, "CHECKPOINT_DISABLE": "1", "TF_CLI_CONFIG_FILE": os.devnull, "TF_IN_AUTOMATION": "1"}
    work = tmp_path / "tf"
    work.mkdir()
    for env_name in ENVS:
        shutil.copy(export_cli(tmp_path, env_name, "terraform"), work / "alarms.tf.json")
        if not (work / ".terraform").exists():
            init = subprocess.run(
                [terraform, "init", "-backend=false", "-input=false", "-no-color", f"-plugin-dir={TF_PLUGIN_DIR}"],
                cwd=work, env=env, capture_output=True, text=True, timeout=300,
            )
            assert init.returncode == 0, init.stdout + init.stderr
        proc = subprocess.run([terraform, "validate", "-json", "-no-color"], cwd=work, env=env,
                              capture_output=True, text=True, timeout=300)
        result = json.loads(proc.stdout)
        assert result["valid"], f"{env_name}: {json.dumps(result['diagnostics'], indent=2)}"


@pytest.mark.parametrize("env", ENVS)
def test_put_metric_alarm_accepts_every_definition_in_moto(env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # In-process moto is safe here only because the gate's moto servers live in sandbox worker
    # processes: entering mock_aws resets the global backends a ThreadedMotoServer shares.
    environment = CATALOG.env(env)
    monkeypatch.setenv("MOTO_ACCOUNT_ID", environment.account)
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    kwargs = export.put_metric_alarm_kwargs(CATALOG, env, SITE_URL, {"api.id": "a1b2c3d4"})
    with mock_aws():
        cw = boto3.client("cloudwatch", region_name=environment.region)
        for kw in kwargs:
            cw.put_metric_alarm(**kw)
        got = [a for page in cw.get_paginator("describe_alarms").paginate(AlarmNamePrefix=f"kanjona-{env}")
               for a in page["MetricAlarms"]]
    assert sorted(a["AlarmName"] for a in got) == sorted(kw["AlarmName"] for kw in kwargs)
    by_name = {a["AlarmName"]: a for a in got}
    for kw in kwargs:
        alarm: dict[str, Any] = by_name[kw["AlarmName"]]
        assert alarm["AlarmArn"].split(":")[4] == environment.account
        for key in ("AlarmDescription", "ComparisonOperator", "EvaluationPeriods", "AlarmActions", "OKActions"):
            assert alarm[key] == kw[key], (kw["AlarmName"], key)
        assert alarm["Threshold"] == float(kw["Threshold"])
        if "Metrics" in kw:
            assert [m["Id"] for m in alarm["Metrics"]] == [m["Id"] for m in kw["Metrics"]]


def test_export_is_byte_identical_across_runs(tmp_path: Path) -> None:
    for env in ENVS:
        for fmt in FORMATS:
            first = export_cli(tmp_path / "a", env, fmt).read_bytes()
            fresh = export.render_alarms(load(ROOT / "runbook_data"), env, fmt, SITE_URL).encode()
            assert first == fresh == export_cli(tmp_path / "b", env, fmt).read_bytes()
            assert first.endswith(b"}\n")


def test_cli_writes_both_formats_for_every_environment(tmp_path: Path) -> None:
    for env in ENVS:
        for fmt in FORMATS:
            out = export_cli(tmp_path, env, fmt)
            assert out.read_text(encoding="utf-8") == export.render_alarms(CATALOG, env, fmt, SITE_URL)
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert written == sorted(f"{env}/{name}" for env in ENVS for name in FORMATS.values())


def test_cli_prints_to_stdout_without_out(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export-alarms", "--env", ENVS[0], "--format", "terraform"]) == 0
    assert capsys.readouterr().out == export.render_alarms(CATALOG, ENVS[0], "terraform", SITE_URL)


def test_unknown_environment_is_a_located_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export-alarms", "--env", "staging", "--format", "terraform"]) == 1
    first = CATALOG.environments[0].loc
    assert capsys.readouterr().err == (
        f"{first}: runbook export-alarms: unknown environment 'staging' (known: {', '.join(ENVS)})\n"
        "1 problem(s) found\n"
    )


def test_overlong_descriptions_are_reported_at_their_summaries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(ROOT / "runbook_data", tmp_path / "runbook_data")
    monkeypatch.chdir(tmp_path)
    expected = []
    for a in (CATALOG.alarms[0], CATALOG.alarms[-1]):
        assert a.loc is not None
        path = Path("alarms") / Path(a.loc.file).name
        file = tmp_path / "runbook_data" / path
        text = file.read_text(encoding="utf-8")
        old = f"summary: {a.summary}"
        assert text.count(old) == 1
        summary = a.summary + " Much longer than a pager shows." * 40
        file.write_text(text.replace(old, f"summary: {summary}"), encoding="utf-8")
        line = text[: text.index(old)].count("\n") + 1
        col = len(text[: text.index(old)].rsplit("\n", 1)[-1]) + len("summary: ") + 1
        length = len(f"{summary}\nRunbook: {SITE_URL}alarms/{a.id}/?env=prod")
        expected.append(
            f"runbook_data/alarms/{path.name}:{line}:{col}: alarm '{a.id}': the AlarmDescription in prod "
            f"would be {length} characters, CloudWatch allows 1024: shorten the summary "
            "(the rest belongs in 'description', shown on the page)"
        )
    rc = main(["--data", "runbook_data", "export-alarms", "--env", "prod", "--format", "cloudformation",
               "--mkdocs", str(ROOT / "mkdocs.yml"), "--out", "out.json"])
    assert rc == 1
    assert capsys.readouterr().err == "\n".join(sorted(expected)) + "\n2 problem(s) found\n"
    assert not (tmp_path / "out.json").exists()


def test_site_url_is_read_with_a_trailing_slash(tmp_path: Path) -> None:
    cfg = tmp_path / "mkdocs.yml"
    cfg.write_text(
        "site_name: x\nsite_url: https://example.org/runbook\nmarkdown_extensions:\n"
        "  - pymdownx.emoji:\n      emoji_index: !!python/name:material.extensions.emoji.twemoji\n",
        encoding="utf-8",
    )
    assert site_url(cfg) == "https://example.org/runbook/"
    cfg.write_text("site_name: x\n", encoding="utf-8")
    with pytest.raises(RunbookError, match="site_url is not set"):
        site_url(cfg)


def test_write_atomic_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "alarms.tf.json"
    write_atomic(target, "old\n")
    write_atomic(target, "new\n")
    assert target.read_text(encoding="utf-8") == "new\n"
    assert [p.name for p in target.parent.iterdir()] == ["alarms.tf.json"]
    assert target.stat().st_mode & 0o044  # readable like any file the user writes


def test_every_description_link_opens_an_alarm_page(built_site: BuiltSite) -> None:
    links = 0
    for env in ENVS:
        for kw in export.put_metric_alarm_kwargs(CATALOG, env, SITE_URL):
            url = re.search(r"https?://\S+", kw["AlarmDescription"])
            assert url, kw["AlarmName"]
            path, _, query = url.group(0).removeprefix(SITE_URL).partition("?")
            assert query == f"env={env}"
            assert (built_site.site_dir / path / "index.html").is_file(), url.group(0)
            links += 1
    assert links == len(ENVS) * len(CATALOG.alarms)


def test_deploy_time_ids_become_inputs_of_the_exported_definitions() -> None:
    catalog = load(ROOT / "runbook_data")
    cfn = json.loads(export.render_alarms(catalog, "prod", "cloudformation", "https://x.test/"))
    assert cfn["Parameters"]["ApiId"]["Type"] == "String"
    assert {"Name": "ApiId", "Value": {"Ref": "ApiId"}} in cfn["Resources"]["Api5xx"]["Properties"]["Dimensions"]
    tf = json.loads(export.render_alarms(catalog, "prod", "terraform", "https://x.test/"))
    assert tf["variable"]["api_id"]["type"] == "string"
    assert tf["resource"]["aws_cloudwatch_metric_alarm"]["api_5xx"]["dimensions"] == {"ApiId": "${var.api_id}"}
    seeded = export.put_metric_alarm_kwargs(catalog, "prod", "https://x.test/", {"api.id": "a1b2c3d4"})
    api_5xx = next(kw for kw in seeded if kw["AlarmName"] == "kanjona-prod-api-5xx")
    assert api_5xx["Dimensions"] == [{"Name": "ApiId", "Value": "a1b2c3d4"}]


def test_a_deploy_time_id_outside_alarm_dimensions_is_a_located_error(tmp_path: Path) -> None:
    data = tmp_path / "runbook_data"
    shutil.copytree(ROOT / "runbook_data", data)
    group = data / "alarms" / "lambda.yaml"
    text = group.read_text(encoding="utf-8")
    group.write_text(text.replace("--function-name {lead_handler} --name live", "--api-id {api.id}", 1))
    with pytest.raises(RunbookError) as err:
        load(data)
    assert len(err.value.problems) == 1
    assert "'{api.id}' is assigned by AWS at deploy time" in str(err.value)
