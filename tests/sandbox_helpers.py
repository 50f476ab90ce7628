"""Seeding helpers for the sandbox tests, run INSIDE the sandbox worker via Sandbox.call.

Only the worker reaches moto (it lives in the sandbox's network namespace); the tests start
their sandboxes with this directory on ``python_path`` so that ``sandbox_helpers:<fn>`` imports.
Every function takes ``endpoint_url`` first (the worker passes it) and returns JSON-able data.
"""

from __future__ import annotations

import io
import json
import time
import urllib.request
import zipfile

import boto3

LAMBDA_TRUST = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                   "Action": "sts:AssumeRole"}],
})


def _client(endpoint_url: str, service: str, account: str | None = None, region: str = "us-east-1"):
    client = boto3.client(service, endpoint_url=endpoint_url, region_name=region,
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    if account is not None:
        def pin_account(request, **_):
            request.headers["x-moto-account-id"] = account
        client.meta.events.register("before-sign", pin_account)
    return client


def create_user_key(endpoint_url: str, account: str, user: str) -> dict:
    """An IAM user and access key issued by moto inside ``account``."""
    iam = _client(endpoint_url, "iam", account)
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    return {"access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"]}


def queue_names(endpoint_url: str, account: str | None = None, region: str = "us-east-1") -> list:
    urls = _client(endpoint_url, "sqs", account, region).list_queues().get("QueueUrls", [])
    return sorted(u.rsplit("/", 1)[-1] for u in urls)


def create_docker_lambda(endpoint_url: str, name: str, region: str = "us-east-1") -> str:
    """A function under moto's Docker backend while Docker is absent: every invoke answers
    200 with FunctionError. (Sandbox.reset() puts the Docker-less backend back.)"""
    request = urllib.request.Request(
        endpoint_url + "/moto-api/config",
        data=json.dumps({"lambda": {"use_docker": True}}).encode(), method="POST",
    )
    urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request).read()
    role = _client(endpoint_url, "iam").create_role(
        RoleName=f"{name}-role", AssumeRolePolicyDocument=LAMBDA_TRUST)["Role"]["Arn"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("index.py", "def handler(event, context):\n    return {'ok': True}\n")
    fn = _client(endpoint_url, "lambda", region=region).create_function(
        FunctionName=name, Runtime="python3.12", Role=role, Handler="index.handler",
        Code={"ZipFile": buf.getvalue()})
    return fn["FunctionArn"]


def put_log_lines(endpoint_url: str, group: str, lines: list, region: str = "us-east-1") -> int:
    logs = _client(endpoint_url, "logs", region=region)
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s1")
    now = int(time.time() * 1000)
    logs.put_log_events(logGroupName=group, logStreamName="s1",
                        logEvents=[{"timestamp": now + i, "message": m} for i, m in enumerate(lines)])
    return len(lines)


def boom(endpoint_url: str) -> None:
    raise RuntimeError("seeding failed on purpose")


def kill_and_reap_wait(endpoint_url: str, pid: int) -> bool:
    """SIGKILL a process of the sandbox (from the worker's side: no snippet can see it) and
    wait until it is dead, gone or a zombie; True once it is."""
    import os
    import signal

    os.kill(pid, signal.SIGKILL)
    for _ in range(1200):  # a safety net of 60 s; normally the first or second look
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                if f.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X"):
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


def remove_file(endpoint_url: str, path: str) -> None:
    import os

    os.unlink(path)


_KEPT: dict = {}


def kept_client_creates(endpoint_url: str, account: str, region: str, queue: str) -> None:
    """Create a queue through one SQS client kept between calls (its connections pooled)."""
    client = _KEPT.setdefault("sqs", _client(endpoint_url, "sqs", account, region))
    client.create_queue(QueueName=queue)
