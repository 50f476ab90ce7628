"""`runbook publish`: refuses a site built from failing data, with a secret, or whose gate report
holds a failure; runs exactly the data's publishing commands (which the gate verifies on the
maintenance page), here against a moto server on loopback through an `aws` shim."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3
import pytest

from .conftest import ROOT, require_aws_cli


def _publish(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "runbook", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "NO_MKDOCS_2_WARNING": "1", **(env or {})})


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site") / "site"
    out.mkdir()
    (out / "index.html").write_text("<!doctype html><title>Runbook</title>\n", encoding="utf-8")
    (out / "assets").mkdir()
    (out / "assets" / "runbook.js").write_text("// js\n", encoding="utf-8")
    return out


def test_dry_run_prints_the_datas_own_commands_for_the_environment(site: Path) -> None:
    proc = _publish("publish", "--env", "prod", "--site", str(site), "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert f"+ aws s3 sync {site}/ s3://kanjona-prod-runbook --delete --only-show-errors" in proc.stdout
    assert "Comment=='kanjona-prod-runbook'" in proc.stdout and "kanjona-prod-website" not in proc.stdout


def test_publish_refuses_failing_data_a_secret_and_a_failed_report(tmp_path: Path, site: Path) -> None:
    data = tmp_path / "runbook_data"
    shutil.copytree(ROOT / "runbook_data", data)
    text = (data / "alarms" / "lambda.yaml").read_text(encoding="utf-8")
    (data / "alarms" / "lambda.yaml").write_text(text.replace("{lead_handler.log_group}", "{lead_handlr}", 1),
                                                 encoding="utf-8")
    proc = _publish("--data", str(data), "publish", "--env", "prod", "--site", str(site), "--dry-run")
    assert proc.returncode == 1 and "unknown placeholder '{lead_handlr}'" in proc.stderr and "+ aws" not in proc.stdout
    leaky = tmp_path / "leaky"
    shutil.copytree(site, leaky)
    key = "AKIA" + "QWERTYUIOPASDFGH"  # pragma: allowlist secret
    (leaky / "page.html").write_text(f"<p>aws_access_key_id = {key}</p>\n", encoding="utf-8")
    proc = _publish("publish", "--env", "prod", "--site", str(leaky), "--dry-run")
    assert proc.returncode == 1 and "AWS" in proc.stderr and key not in proc.stderr + proc.stdout
    report = tmp_path / "r.json"
    report.write_text(json.dumps({"summary": {"passed": 9, "failed": 1, "xpassed": 0}}), encoding="utf-8")
    proc = _publish("publish", "--env", "prod", "--site", str(site), "--report", str(report), "--dry-run")
    assert proc.returncode == 1 and "holds 1 failure(s)" in proc.stderr
    proc = _publish("publish", "--env", "prod", "--site", str(tmp_path), "--dry-run")
    assert proc.returncode == 1 and "no index.html" in proc.stderr


def _moto_server() -> tuple[subprocess.Popen[bytes], str]:
    """A moto server of its own (another process: moto's state is global to a process, and S3
    bucket names to all its accounts), on a free loopback port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    for _ in range(600):  # bounded: until it answers (or it died)
        try:
            opener.open(endpoint + "/moto-api/data.json", timeout=1).read()
            return server, endpoint
        except OSError:
            if server.poll() is not None:
                break
            time.sleep(0.05)
    server.kill()
    raise RuntimeError("moto_server did not start")


def test_publish_copies_the_site_and_invalidates_the_distribution(tmp_path: Path, site: Path) -> None:
    aws = require_aws_cli()
    server, endpoint = _moto_server()
    try:
        creds = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing",  # pragma: allowlist secret
                 "region_name": "us-east-1", "endpoint_url": endpoint}
        s3, cloudfront = boto3.client("s3", **creds), boto3.client("cloudfront", **creds)
        s3.create_bucket(Bucket="kanjona-prod-runbook")
        s3.put_object(Bucket="kanjona-prod-runbook", Key="stale.html", Body=b"old")
        dist = cloudfront.create_distribution(DistributionConfig={
            "CallerReference": "runbook", "Comment": "kanjona-prod-runbook", "Enabled": True,
            "Origins": {"Quantity": 1, "Items": [{"Id": "s3", "DomainName": "kanjona-prod-runbook.s3.amazonaws.com",
                                                  "S3OriginConfig": {"OriginAccessIdentity": ""}}]},
            "DefaultCacheBehavior": {"TargetOriginId": "s3", "ViewerProtocolPolicy": "redirect-to-https",
                                     "MinTTL": 0, "ForwardedValues": {"QueryString": False,
                                                                      "Cookies": {"Forward": "none"}}}})
        # The commands as the data has them, their `aws` pointed at moto (and nowhere else).
        shims = tmp_path / "bin"
        shims.mkdir()
        (shims / "aws").write_text(f'#!/bin/sh\nexec {aws} --endpoint-url {endpoint} "$@"\n')
        (shims / "aws").chmod(0o755)
        env = {"PATH": f"{shims}:{os.environ['PATH']}", "AWS_ACCESS_KEY_ID": "testing",
               "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",  # pragma: allowlist secret
               "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
               "HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": "127.0.0.1"}
        proc = _publish("publish", "--env", "prod", "--site", str(site), env=env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        keys = {o["Key"] for o in s3.list_objects_v2(Bucket="kanjona-prod-runbook")["Contents"]}
        assert keys == {"index.html", "assets/runbook.js"}  # the stale file went (--delete)
        invalidations = cloudfront.list_invalidations(DistributionId=dist["Distribution"]["Id"])
        assert invalidations["InvalidationList"]["Quantity"] == 1
    finally:
        server.kill()
        server.wait()
