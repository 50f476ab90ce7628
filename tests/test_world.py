"""The gate's world: dev and prod seeded into one moto server, each in its own account.

Every assertion goes through boto3 with the access key the seeding returned and no account
header, as the gate's commands do: a resource found this way is where a command finds it.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto.server import ThreadedMotoServer

from runbook import world
from runbook.data import placeholders
from runbook.data.load import load
from runbook.data.model import Catalog
from runbook.site import build

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "runbook_data"
ENVS = ("dev", "prod")
SITE_URL = build.site_url(ROOT / "mkdocs.yml")
NO_PROXY = Config(proxies={}, retries={"max_attempts": 1, "mode": "standard"})


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load(DATA)


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{server.get_host_and_port()[1]}"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def seeded(endpoint: str) -> dict[str, Any]:
    """dev then prod, timed; then dev again after a reset (what every reseed of the gate costs)."""
    creds, seconds = {}, {}
    for env in ENVS:
        start = time.perf_counter()
        creds[env] = world.seed(endpoint, str(DATA), env, SITE_URL)
        seconds[env] = time.perf_counter() - start
    return {"creds": creds, "seconds": seconds}


@pytest.fixture(scope="module")
def creds(seeded: dict[str, Any]) -> dict[str, dict[str, str]]:
    return seeded["creds"]


def aws(endpoint: str, creds: dict[str, str], service: str) -> Any:
    """A client as an on-call engineer's CLI has it: the env's key and region, no header."""
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=creds["region"],
        aws_access_key_id=creds["access_key_id"],
        aws_secret_access_key=creds["secret_access_key"],
        config=NO_PROXY,
    )


def scope(catalog: Catalog, env: str) -> dict[str, str]:
    return catalog.scope(env)


def deployed(endpoint: str, creds: dict[str, str], catalog: Catalog, env: str) -> dict[str, str]:
    """The deploy-time ids ({api.id}, {website_cdn.id}) found the way commands find them: by name."""
    s = scope(catalog, env)
    apis = {a["Name"]: a["ApiId"] for a in aws(endpoint, creds, "apigatewayv2").get_apis()["Items"]}
    dists = aws(endpoint, creds, "cloudfront").list_distributions()["DistributionList"].get("Items", [])
    by_comment = {d["Comment"]: d["Id"] for d in dists}
    out = {}
    for name, rname in placeholders.deploy_names(catalog).items():
        out[name] = apis.get(s[rname]) or by_comment.get(s[rname], "")
    return out


def recent(minutes: int) -> tuple[datetime, datetime]:
    end = datetime.now(UTC)
    return end - timedelta(minutes=minutes), end


# ------------------------------------------------------------------ accounts and credentials


def test_seed_returns_exactly_the_gate_credentials(creds: dict[str, dict[str, str]], catalog: Catalog) -> None:
    for env in ENVS:
        assert set(creds[env]) == {"env", "account", "region", "access_key_id", "secret_access_key"}
        assert creds[env]["account"] == catalog.env(env).account
        assert creds[env]["region"] == catalog.env(env).region
        json.dumps(creds[env])  # travels back from the sandbox worker as JSON


def test_each_key_lands_in_its_environments_account(endpoint: str, creds: dict[str, dict[str, str]]) -> None:
    for env in ENVS:
        ident = aws(endpoint, creds[env], "sts").get_caller_identity()
        assert ident["Account"] == creds[env]["account"]


def test_lead_handler_exists_in_its_account_and_not_in_the_other(
    endpoint: str, creds: dict[str, dict[str, str]], catalog: Catalog
) -> None:
    for env, other in (("dev", "prod"), ("prod", "dev")):
        name = scope(catalog, env)["lead_handler"]
        fn = aws(endpoint, creds[env], "lambda").get_function(FunctionName=name)
        assert fn["Configuration"]["FunctionArn"] == scope(catalog, env)["lead_handler.arn"]
        assert fn["Configuration"]["TracingConfig"]["Mode"] == "Active"
        assert fn["Concurrency"]["ReservedConcurrentExecutions"] > 0
        with pytest.raises(aws(endpoint, creds[other], "lambda").exceptions.ResourceNotFoundException):
            aws(endpoint, creds[other], "lambda").get_function(FunctionName=name)


# ------------------------------------------------------------------ Lambda, DynamoDB, SQS


def test_live_alias_points_at_version_2_and_version_1_exists_for_the_rollback(
    endpoint: str, creds: dict[str, dict[str, str]], catalog: Catalog
) -> None:
    previous = catalog.inputs["previous-version"].sample
    for env in ENVS:
        lam = aws(endpoint, creds[env], "lambda")
        name = scope(catalog, env)["lead_handler"]
        assert lam.get_alias(FunctionName=name, Name="live")["FunctionVersion"] == "2"
        versions = {v["Version"] for v in lam.list_versions_by_function(FunctionName=name)["Versions"]}
        assert {previous, "2"} <= versions


def test_leads_table_has_pitr_and_the_sample_lead(
    endpoint: str, creds: dict[str, dict[str, str]], catalog: Catalog
) -> None:
    lead = catalog.inputs["lead-id"].sample
    since = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%d")
    for env in ENVS:
        ddb = aws(endpoint, creds[env], "dynamodb")
        table = scope(catalog, env)["leads_table"]
        pitr = ddb.describe_continuous_backups(TableName=table)["ContinuousBackupsDescription"]
        assert pitr["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
        key = {"pk": {"S": f"LEAD#{lead}"}, "sk": {"S": f"LEAD#{lead}"}}
        assert ddb.get_item(TableName=table, Key=key)["Item"]["createdAt"]["S"] >= since
        recent_items = ddb.scan(
            TableName=table,
            FilterExpression="createdAt > :since",
            ExpressionAttributeValues={":since": {"S": since}},
        )["Items"]
        assert recent_items


def test_dead_letter_queue_holds_failed_leads(
    endpoint: str, creds: dict[str, dict[str, str]], catalog: Catalog
) -> None:
    for env in ENVS:
        sqs = aws(endpoint, creds[env], "sqs")
        s = scope(catalog, env)
        attrs = sqs.get_queue_attributes(QueueUrl=s["dlq.url"], AttributeNames=["All"])["Attributes"]
        assert int(attrs["ApproximateNumberOfMessages"]) == 3
        redrive = sqs.get_queue_attributes(QueueUrl=s["lead_queue.url"], AttributeNames=["RedrivePolicy"])
        assert json.loads(redrive["Attributes"]["RedrivePolicy"])["deadLetterTargetArn"] == s["dlq.arn"]
        messages = sqs.receive_message(QueueUrl=s["dlq.url"], MaxNumberOfMessages=10, VisibilityTimeout=0)
        assert {"leadId", "email"} <= set(json.loads(messages["Messages"][0]["Body"]))


# ------------------------------------------------------------------ logs, metrics, traces


def test_lead_handler_log_has_the_errors_of_the_last_hour(
    endpoint: str, creds: dict[str, dict[str, str]], catalog: Catalog
) -> None:
    start = int((time.time() - 3600) * 1000)
    request_id = catalog.inputs["request-id"].sample
    for env in ENVS:
        logs = aws(endpoint, creds[env], "logs")
        group = scope(catalog, env)["lead_handler.log_group"]
        errors = logs.filter_log_events(logGroupName=group, filterPattern="ERROR", startTime=start)["events"]
        text = "\n".join(e["message"] for e in errors)
        for pattern in ("ValidationError", "DynamoDBServiceException", "TimeoutError"):
            assert pattern in text, pattern
        assert request_id in text
        cold = logs.filter_log_events(logGroupName=group, filterPattern='"Init Duration"', startTime=start)["events"]
        assert cold and all(e["message"].startswith("REPORT") for e in cold)
        retention = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]["retentionInDays"]
        assert retention == catalog.env(env).values["lambda_log_retention_days"]


def test_access_log_and_canary_logs_are_found_as_the_runbook_looks_for_them(
    endpoint: str, creds: dict[str, dict[str, str]], catalog: Catalog
) -> None:
    start = int((time.time() - 3600) * 1000)
    for env in ENVS:
        logs = aws(endpoint, creds[env], "logs")
        s = scope(catalog, env)
        access = logs.filter_log_events(logGroupName=s["api_access_logs"], startTime=start)["events"]
        statuses = {json.loads(e["message"])["status"][0] for e in access}
        assert {"2", "4", "5"} <= statuses
        for canary in ("api_canary", "website_canary"):
            groups = logs.describe_log_groups(logGroupNamePrefix=s[f"{canary}.log_group_prefix"])["logGroups"]
            assert len(groups) == 1
            assert logs.filter_log_events(logGroupName=groups[0]["logGroupName"], startTime=start)["events"]


def test_lambda_errors_have_datapoints_in_the_last_30_minutes(
    endpoint: str, creds: dict[str, dict[str, str]], catalog: Catalog
) -> None:
    start, end = recent(30)
    for env in ENVS:
        points = aws(endpoint, creds[env], "cloudwatch").get_metric_statistics(
            Namespace="AWS/Lambda",
            MetricName="Errors",
            Dimensions=[{"Name": "FunctionName", "Value": scope(catalog, env)["lead_handler"]}],
            StartTime=start,
            EndTime=end,
            Period=300,
            Statistics=["Sum"],
        )["Datapoints"]
        assert points and sum(p["Sum"] for p in points) > 0


def test_every_alarm_metric_has_data_in_the_window_commands_ask_for(
    endpoint: str, creds: dict[str, dict[str, str]], catalog: Catalog
) -> None:
    start, end = recent(25)
    for env in ENVS:
        cw = aws(endpoint, creds[env], "cloudwatch")
        ids = deployed(endpoint, creds[env], catalog, env)
        for alarm in catalog.alarms:
            metrics = [alarm.metric] if alarm.metric else [q.metric for q in alarm.metrics if q.metric]
            for m in metrics:
                assert m is not None
                dims = [
                    {"Name": k, "Value": placeholders.substitute(v, scope(catalog, env), ids.__getitem__)}
                    for k, v in m.dimensions.items()
                ]
                points = cw.get_metric_statistics(
                    Namespace=m.namespace,
                    MetricName=m.name,
                    Dimensions=dims,
                    StartTime=start,
                    EndTime=end,
                    Period=m.period,
                    Statistics=["SampleCount"],
                )["Datapoints"]
                assert points, f"{env}: {alarm.id}: no {m.namespace} {m.name} {dims}"


def test_the_sample_trace_is_returned_and_summaries_exist(
    endpoint: str, creds: dict[str, dict[str, str]], catalog: Catalog
) -> None:
    trace_id = catalog.inputs["trace-id"].sample
    start, end = recent(60)
    for env in ENVS:
        xray = aws(endpoint, creds[env], "xray")
        traces = xray.batch_get_traces(TraceIds=[trace_id])["Traces"]
        assert [t["Id"] for t in traces] == [trace_id]
        docs = [json.loads(s["Document"]) for s in traces[0]["Segments"]]
        handler = next(d for d in docs if d["name"] == scope(catalog, env)["lead_handler"])
        assert handler["aws"]["request_id"] == catalog.inputs["request-id"].sample
        assert xray.get_trace_summaries(StartTime=start, EndTime=end)["TraceSummaries"]


# ------------------------------------------------------------------ alarms and the rest


def test_alarms_are_exactly_the_catalogs(endpoint: str, creds: dict[str, dict[str, str]], catalog: Catalog) -> None:
    for env in ENVS:
        cw = aws(endpoint, creds[env], "cloudwatch")
        names = {a["AlarmName"] for a in cw.describe_alarms(AlarmNamePrefix=f"kanjona-{env}")["MetricAlarms"]}
        expected = {placeholders.substitute(a.name, scope(catalog, env), lambda n: n) for a in catalog.alarms}
        assert names == expected
        alarming = {a["AlarmName"] for a in cw.describe_alarms(StateValue="ALARM")["MetricAlarms"]}
        assert f"kanjona-{env}-lambda-errors" in alarming and alarming < expected


def test_api_alarms_watch_the_api_by_its_id(endpoint: str, creds: dict[str, dict[str, str]], catalog: Catalog) -> None:
    for env in ENVS:
        api_id = next(a["ApiId"] for a in aws(endpoint, creds[env], "apigatewayv2").get_apis()["Items"])
        alarm = aws(endpoint, creds[env], "cloudwatch").describe_alarms(AlarmNames=[f"kanjona-{env}-api-5xx"])
        assert alarm["MetricAlarms"][0]["Dimensions"] == [{"Name": "ApiId", "Value": api_id}]


def test_api_is_found_by_name_with_its_routes_and_stages(
    endpoint: str, creds: dict[str, dict[str, str]], catalog: Catalog
) -> None:
    for env in ENVS:
        gw = aws(endpoint, creds[env], "apigatewayv2")
        name = scope(catalog, env)["api"]
        api_id = next(a["ApiId"] for a in gw.get_apis()["Items"] if a["Name"] == name)
        routes = {r["RouteKey"] for r in gw.get_routes(ApiId=api_id)["Items"]}
        assert {"POST /leads", "GET /health"} <= routes
        stages = {s["StageName"] for s in gw.get_stages(ApiId=api_id)["Items"]}
        assert "$default" in stages and len(stages) == 2
        integration = gw.get_integrations(ApiId=api_id)["Items"][0]
        assert integration["IntegrationUri"] == scope(catalog, env)["lead_handler.arn"] + ":live"


def test_website_canaries_secret_dashboard_and_distribution(
    endpoint: str, creds: dict[str, dict[str, str]], catalog: Catalog
) -> None:
    for env in ENVS:
        s = scope(catalog, env)
        c = creds[env]
        assert aws(endpoint, c, "synthetics").get_canary(Name=s["api_canary"])["Canary"]["Name"] == s["api_canary"]
        keys = [o["Key"] for o in aws(endpoint, c, "s3").list_objects_v2(Bucket=s["website_bucket"])["Contents"]]
        assert "index.html" in keys
        artifacts = aws(endpoint, c, "s3").list_objects_v2(Bucket=s["canary_artifacts"], Prefix="canary/")
        assert artifacts["KeyCount"] > 0
        secret = aws(endpoint, c, "secretsmanager").get_secret_value(SecretId=s["twilio_secret"])
        assert "authToken" in json.loads(secret["SecretString"])
        body = aws(endpoint, c, "cloudwatch").get_dashboard(DashboardName=s["dashboard"])["DashboardBody"]
        assert json.loads(body)["widgets"]
        items = aws(endpoint, c, "cloudfront").list_distributions()["DistributionList"]["Items"]
        cdns = [key for key, res in catalog.resources.items() if res.type == "cloudfront_distribution"]
        assert [d["Comment"] for d in items] == [s[key] for key in cdns]  # the inventory's, each once
        website = next(d for d in items if d["Comment"] == s["website_cdn"])
        assert website["Origins"]["Items"][0]["DomainName"].startswith(s["website_bucket"] + ".s3.")


def test_reseeding_after_a_reset(seeded: dict[str, Any], endpoint: str, capsys: pytest.CaptureFixture[str]) -> None:
    """What each reseed of the gate does: after a reset, the same worlds in the same accounts.

    The times are printed for the record only (no bound: a slow machine is not a failure).

    The first seeding in a process pays for moto importing its service modules; seeding
    again after a reset is what each reseed of the gate costs. The reseeded world replaces
    the module's (the credentials are updated in place for any test that runs later).
    """
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    opener.open(urllib.request.Request(endpoint + "/moto-api/reset", data=b"{}", method="POST"), timeout=10).read()
    start = time.perf_counter()
    result = world.seed_all(endpoint, str(DATA), SITE_URL)
    warm = (time.perf_counter() - start) / len(result)
    before = {env: (c["account"], c["region"]) for env, c in seeded["creds"].items()}
    seeded["creds"].update({r["env"]: r for r in result})
    assert [r["env"] for r in result] == list(ENVS)
    assert {r["env"]: (r["account"], r["region"]) for r in result} == before
    # Each env answers to the key the reseeding issued, in its own account.
    for r in result:
        sts = boto3.client("sts", endpoint_url=endpoint, region_name=r["region"], config=NO_PROXY,
                           aws_access_key_id=r["access_key_id"], aws_secret_access_key=r["secret_access_key"])
        assert sts.get_caller_identity()["Account"] == r["account"]
    with capsys.disabled():
        first = ", ".join(f"{env} {s:.2f} s" for env, s in seeded["seconds"].items())
        print(f"\n[world] seeding: first in this process {first}; after a reset {warm:.2f} s per environment")
