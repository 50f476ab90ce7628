"""The AWS CLI fork server: the same bytes as the real CLI, ~5x sooner, and nothing left behind.

Most tests run inside one sandbox, where a snippet can call both ``aws`` (the client, handing
the command to the fork server) and ``/usr/bin/aws --endpoint-url "$AWS_ENDPOINT_URL"`` (the
real CLI, started afresh) with the very same environment, working directory and moto state.
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import subprocess
from pathlib import Path

import pytest

from runbook.gate.sandbox.sandbox import EnvCredentials, Sandbox

from .test_sandbox import decoy, listener  # noqa: F401 - fixtures

AWS_CLI = os.environ.get("RUNBOOK_AWS_CLI", "/usr/bin/aws")
TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
REGION = "eu-west-1"


# Missing CLI or namespaces: a failure when RUNBOOK_AWS_CLI is set, else a skip (tests/conftest.py).
pytestmark = [pytest.mark.requires_aws_cli("script"), pytest.mark.requires_isolation("netns")]

# Synchronisation inside a snippet instead of sleeps: poll a condition until it holds, for at
# most 60 s (a safety net), and say so on stderr (and fail) if it never does.
WAIT_UNTIL = """\
wait_until() {
  local i
  for ((i = 0; i < 1200; i++)); do eval "$1" && return 0; sleep 0.05; done
  echo "wait_until: still false after 60 s: $1" >&2
  return 1
}
"""

SEED = f"""\
import io, json, time, zipfile
import boto3
iam = boto3.client("iam")
role = iam.create_role(RoleName="fn-role", AssumeRolePolicyDocument=json.dumps({{
    "Version": "2012-10-17", "Statement": [{{"Effect": "Allow", "Action": "sts:AssumeRole",
    "Principal": {{"Service": "lambda.amazonaws.com"}}}}]}}))["Role"]["Arn"]
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w") as zf:
    zf.writestr("index.py", "def handler(event, context):\\n    return {{'ok': True, 'event': event}}\\n")
boto3.client("lambda").create_function(FunctionName="orders-api", Runtime="python3.12", Role=role,
    Handler="index.handler", Code={{"ZipFile": buf.getvalue()}})
ddb = boto3.client("dynamodb")
ddb.create_table(TableName="orders", BillingMode="PAY_PER_REQUEST",
    AttributeDefinitions=[{{"AttributeName": "pk", "AttributeType": "S"}}],
    KeySchema=[{{"AttributeName": "pk", "KeyType": "HASH"}}])
ddb.put_item(TableName="orders", Item={{"pk": {{"S": "o-1"}}, "total": {{"N": "42"}}}})
s3 = boto3.client("s3")
s3.create_bucket(Bucket="kanjona-artifacts", CreateBucketConfiguration={{"LocationConstraint": "{REGION}"}})
s3.put_object(Bucket="kanjona-artifacts", Key="big.bin", Body=b"x" * (1 << 20))
s3.put_object(Bucket="kanjona-artifacts", Key="ключ/é.txt", Body="é\\n".encode())
logs = boto3.client("logs")
logs.create_log_group(logGroupName="/kanjona/api")
logs.create_log_stream(logGroupName="/kanjona/api", logStreamName="s1")
now = int(time.time() * 1000) - 60_000
logs.put_log_events(logGroupName="/kanjona/api", logStreamName="s1", logEvents=[
    {{"timestamp": now + i, "message": m}} for i, m in enumerate(["ERROR payment declined", "INFO retry"])])
boto3.client("sqs").create_queue(QueueName="orders-dlq")
print("seeded")
"""

# Each command runs twice in one snippet: through the fork server (`aws`) and through the
# real CLI. {aws} is replaced by each in turn; the snippet's own setup runs first.
REAL = '/usr/bin/aws --endpoint-url "$AWS_ENDPOINT_URL"'
CASES = {
    "json": "{aws} sts get-caller-identity",
    "text": "{aws} sts get-caller-identity --output text",
    "table": "{aws} dynamodb describe-table --table-name orders --output table "
             "--query 'Table.{{Name:TableName,Status:TableStatus,Keys:KeySchema}}'",
    "query-text": "{aws} dynamodb scan --table-name orders --query 'Items[].pk.S' --output text",
    "not-found-254": "{aws} dynamodb describe-table --table-name missing-table",
    "param-validation-252": "{aws} dynamodb describe-table --table-name x",
    "unknown-option-252": "{aws} sqs list-queues --bogus",
    "version": "{aws} --version",
    "lambda-invoke-file": "{aws} lambda invoke --function-name orders-api --payload '{{\"a\": 1}}' "
                          "--cli-binary-format raw-in-base64-out out-{n}.json && cat out-{n}.json",
    "stdin-param-file": "echo '{{\"pk\": {{\"S\": \"o-1\"}}}}' | "
                        "{aws} dynamodb get-item --table-name orders --key file:///dev/stdin",
    "process-substitution": "{aws} dynamodb get-item --table-name orders "
                            "--key file://<(echo '{{\"pk\": {{\"S\": \"o-1\"}}}}')",
    "s3-cp-stdin": "printf 'payload %s\\n' {n} | {aws} s3 cp - s3://kanjona-artifacts/in-{n}.txt "
                   "&& {aws} s3 cp s3://kanjona-artifacts/in-{n}.txt -",
    "s3-ls-unicode": "{aws} s3 ls s3://kanjona-artifacts/ключ/ --recursive | cut -c 20-",
    "broken-pipe": "{aws} s3 cp s3://kanjona-artifacts/big.bin - | head -c 3; echo \" ${{PIPESTATUS[*]}}\"",
    "logs-tail": "{aws} logs tail /kanjona/api --since 1h --format short | cut -c 21-",
    # Stopped (SIGTERM through `timeout`) once it has printed every event: no race with a clock.
    "logs-follow-stopped": "timeout 600 {aws} logs tail /kanjona/api --follow --since 1h --format short "
                           "> follow-{n}.txt & pid=$!; wait_until \"grep -qs 'INFO retry' follow-{n}.txt\"; "
                           "kill -TERM $pid; wait $pid; rc=$?; cut -c 21- follow-{n}.txt; echo \" $rc\"",
    "alias-from-home": "mkdir -p ~/.aws/cli && printf '[toplevel]\\nwhoami = sts get-caller-identity "
                       "--query Account\\n' > ~/.aws/cli/alias && {aws} whoami",
    "config-file-from-env": "printf '[default]\\noutput = text\\nregion = ap-south-1\\n' > cfg && "
                            "(unset AWS_REGION AWS_DEFAULT_REGION; export AWS_CONFIG_FILE=$PWD/cfg; "
                            "{aws} configure list && {aws} sts get-caller-identity)",
    "env-profile-error": "AWS_PROFILE=nope {aws} sts get-caller-identity",
    # What an exec passes on besides the environment: umask, resource limits.
    "umask": "(umask 077; {aws} s3 cp --no-progress s3://kanjona-artifacts/ключ/é.txt e-{n}.txt "
             "&& stat -c '%a %s' e-{n}.txt)",
    "file-size-limit": "(ulimit -S -f 1; {aws} s3 cp --no-progress s3://kanjona-artifacts/big.bin "
                       "big-{n}.bin; echo \" $?\"; ls big-{n}.bin)",
    # A model in ~/.aws/models: the fork server's prepared Loader scans do not apply.
    "models-in-home": "mkdir -p ~/.aws/models/runbookq/2012-11-05 && cp "
                      "/usr/lib/python3/dist-packages/awscli/botocore/data/sqs/2012-11-05/service-2.json "
                      "~/.aws/models/runbookq/2012-11-05/ && {aws} runbookq list-queues",
    # The data files the CLI loads, in order, whether parsed by the fork server or not.
    "debug-loading": "{aws} --debug dynamodb describe-table --table-name orders 2>&1 >/dev/null "
                     "| grep -o 'Loading JSON file: .*'",
    "locale-fallback": "LC_ALL=C {aws} s3 ls s3://kanjona-artifacts/ключ/ --recursive | cut -c 20-",
}

COMPARE = WAIT_UNTIL.replace("{", "{{").replace("}", "}}") + """\
set +e
run() {{  # name, command: rc, stdout and stderr of the command, base64 in one JSON line
  ( eval "$2" ) > "$1.out" 2> "$1.err"; echo $? > "$1.rc"
}}
run fast {fast}
run real {real}
python3 - <<'EOF'
import base64, json
print(json.dumps({{f"{{n}}.{{k}}": base64.b64encode(open(f"{{n}}.{{k}}", "rb").read()).decode()
                  for n in ("fast", "real") for k in ("rc", "out", "err")}}))
EOF
"""


def _register(sb: Sandbox, env: str, account: str) -> EnvCredentials:
    key = sb.call("sandbox_helpers:create_user_key", account=account, user=f"zygote-{env}")
    creds = EnvCredentials(env=env, account=account, region=REGION, **key)
    sb.set_credentials(creds)
    return creds


@pytest.fixture(scope="module")
def sb():
    with Sandbox(AWS_CLI, python_path=[TESTS]) as box:
        _register(box, "dev", "210987654321")
        seeded = box.run("python", SEED, "dev")
        assert seeded.rc == 0, seeded.stderr
        info = box.zygote_info(wait=True)
        assert info["ready"], info
        yield box


def _served(sb: Sandbox) -> int:
    return sb.zygote_info()["status"]["served"]


def _children(sb: Sandbox) -> list[int]:
    return sb.zygote_info()["status"]["children"]


# -- fidelity ------------------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_bytes_as_the_real_cli(sb, case):
    template = CASES[case]
    fast = shlex.quote(template.format(aws="aws", n="fast"))
    real = shlex.quote(template.format(aws=REAL, n="real"))
    before = _served(sb)
    r = sb.run("bash", COMPARE.format(fast=fast, real=real), "dev", timeout=60)
    assert r.rc == 0, r.stderr
    got = {k: base64.b64decode(v).decode("utf-8", "surrogateescape")
           for k, v in json.loads(r.stdout.strip().splitlines()[-1]).items()}
    for part in ("rc", "out", "err"):
        fast_part = got[f"fast.{part}"].replace("fast", "<n>")
        real_part = got[f"real.{part}"].replace("real", "<n>")
        assert fast_part == real_part, f"{case}: {part} differs"
    if case == "locale-fallback":  # declined (LC_ALL differs): the client ran the real CLI
        assert _served(sb) == before
    else:
        assert _served(sb) > before, "the fork server did not run the command"
    # Sanity: the cases do what they are meant to
    expected_rc = {"not-found-254": "254", "param-validation-252": "252", "unknown-option-252": "252",
                   "env-profile-error": "255", "file-size-limit": "2"}
    assert got["fast.rc"].strip() == expected_rc.get(case, "0"), (case, got)
    if case == "logs-follow-stopped":
        assert got["fast.out"] == "ERROR payment declined\nINFO retry\n 143\n", got
    if case == "alias-from-home":
        assert got["fast.out"].strip() == '"210987654321"'
    if case == "config-file-from-env":
        assert "ap-south-1" in got["fast.out"] and "config-file" in got["fast.out"]
        assert "\n210987654321\tarn:" in got["fast.out"]  # output = text, from that file
    if case == "umask":
        assert got["fast.out"].split()[-2:] == ["600", "3"], got["fast.out"]
    if case == "file-size-limit":  # a 1 KiB limit: SIGXFSZ is ignored by Python, the write fails
        assert "File too large" in got["fast.err"] and got["fast.out"].split() == ["1"]
    if case == "models-in-home":
        assert "orders-dlq" in got["fast.out"]
    if case == "debug-loading":
        assert "endpoints.json" in got["fast.out"] and "dynamodb" in got["fast.out"]
    if case in ("stdin-param-file", "process-substitution"):
        assert '"total"' in got["fast.out"]


def test_status_explains_what_is_rewritten(sb):
    status = sb.zygote_info()["status"]
    assert status["refusal"] is None
    rewritten = "\n".join(status["rewritten"])
    for expected in ("Loader.CUSTOMER_DATA_PATH", "AliasLoader.__init__ defaults", "site.USER_SITE",
                     "assumerole.CACHE_DIR"):
        assert expected in rewritten
    assert "HOME" not in status["fingerprint"] and "AWS_DATA_PATH" not in status["fingerprint"]
    assert {"LANG", "LC_ALL", "TZ", "PYTHONPATH"} <= set(status["fingerprint"])
    assert status["prefilled_scans"] >= 4 and status["preparsed_files"] >= 20


def test_children_start_from_the_prepared_loader_only_when_it_applies(sb):
    code = """\
export RUNBOOK_AWS_ZYGOTE_DEBUG=1
aws sts get-caller-identity >/dev/null
mkdir -p ~/.aws/models
aws sts get-caller-identity >/dev/null
AWS_DATA_PATH=/nonexistent aws sts get-caller-identity >/dev/null
"""
    r = sb.run("bash", code, "dev")
    assert r.rc == 0, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("aws-zygote:")]
    assert len(lines) == 3, r.stderr
    assert lines[0].startswith("aws-zygote: Loader prepared (")
    assert lines[1] == "aws-zygote: Loader not prepared: other data directories exist"
    assert lines[2] == "aws-zygote: Loader not prepared: other search paths"


# -- isolation between commands -----------------------------------------------------------


def test_each_call_gets_its_own_environment(sb):
    other = sb.call("sandbox_helpers:create_user_key", account="123412341234", user="zygote-other")
    code = f"""\
aws sts get-caller-identity --query Account --output text
AWS_ACCESS_KEY_ID={other['access_key_id']} AWS_SECRET_ACCESS_KEY={other['secret_access_key']} \\
  aws sts get-caller-identity --query Account --output text
aws sts get-caller-identity --query Account --output text
AWS_DEFAULT_REGION=ap-south-1 AWS_REGION=ap-south-1 aws configure get region || echo no-region-set
aws configure list | grep region
AWS_DEFAULT_OUTPUT=text aws sqs list-queues --query 'length(QueueUrls)'
aws sqs list-queues --query 'length(QueueUrls)'
"""
    r = sb.run("bash", code, "dev")
    assert r.rc == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[:3] == ["210987654321", "123412341234", "210987654321"]
    assert "eu-west-1" in lines[4] and "ap-south-1" not in lines[4]
    assert lines[5:] == ["1", "1"]


def test_concurrent_calls_and_pipelines(sb):
    code = """\
for i in 1 2 3 4; do aws sts get-caller-identity --query Account --output text > acct-$i & done
wait
cat acct-*
aws s3 cp s3://kanjona-artifacts/big.bin - | aws s3 cp - s3://kanjona-artifacts/copy.bin
aws s3api head-object --bucket kanjona-artifacts --key copy.bin --query ContentLength
"""
    before = _served(sb)
    r = sb.run("bash", code, "dev")
    assert r.rc == 0, r.stderr
    assert r.stdout.split() == ["210987654321"] * 4 + ["1048576"]
    assert _served(sb) - before == 7  # every one of the 7 commands went through the fork server


# -- stopping commands ---------------------------------------------------------------------


def test_a_run_timeout_leaves_no_command_behind(sb):
    before = _served(sb)
    r = sb.run("bash", "aws logs tail /kanjona/api --follow --since 1h --format short", "dev",
               timeout=2, stream=True)
    assert r.timed_out and r.rc == 124, r.stderr
    assert _served(sb) == before + 1, "the fork server did not start the command the timeout stopped"
    assert _children(sb) == []
    assert sb.zygote_info()["children"] == []


# The fork server's children, as its status request tells them: the only view a snippet has
# of it (it is outside the run's PID namespace).
CHILDREN = f"""\
children() {{
  /usr/bin/python3 - <<'PY'
import json, os, socket, sys
sys.path.insert(0, {str(REPO / "runbook" / "gate" / "forkserver" / "cli")!r})
import protocol
with socket.socket(socket.AF_UNIX) as s:
    s.connect(os.environ["RUNBOOK_AWS_ZYGOTE"])
    s.sendall(protocol.header(protocol.KIND_STATUS, 0))
    data = b""
    while chunk := s.recv(65536):
        data += chunk
print(len(json.loads(data[1:])["children"]))
PY
}}
"""


def test_a_killed_client_takes_its_command_along(sb):
    """SIGKILL on the client (no chance to forward): the fork server stops the command itself."""
    code = WAIT_UNTIL + CHILDREN + """\
"$RUNBOOK_AWS" --endpoint-url "$AWS_ENDPOINT_URL" logs tail /kanjona/api --follow --since 1h > follow.txt &
client=$!
wait_until "grep -q 'INFO retry' follow.txt"  # the command runs: it printed what there is
echo "running: $(children)"
kill -KILL $client
wait_until '[ "$(children)" = 0 ]' || true
echo "left: $(children)"
"""
    r = sb.run("bash", code, "dev", timeout=20)
    assert r.rc == 0, r.stderr
    assert r.stdout.split() == ["running:", "1", "left:", "0"], r.stdout


def test_signals_reach_the_command_and_its_status_comes_back(sb):
    # The client itself in the background (`aws` is a function: $! would be a subshell).
    follow = "logs tail /kanjona/api --follow --since 1h"
    fast = '"$RUNBOOK_AWS" --endpoint-url "$AWS_ENDPOINT_URL"'
    # Each signal is sent once the command has printed every event (it is following), not
    # after a guessed delay.
    started = "client=$!; wait_until \"grep -q 'INFO retry' out-{n}\""
    code = WAIT_UNTIL + f"""\
set +e
{fast} {follow} > out-1 &
{started.format(n=1)}; kill -TERM $client; wait $client; echo "term $?"
# `&` in a script ignores SIGINT, for the real CLI as for the client and its command
{fast} {follow} > out-2 &
{started.format(n=2)}; echo "sigint-ignored $(( 0x$(awk '/^SigIgn:/ {{print $2}}' /proc/$client/status) >> 1 & 1 ))"
kill -INT $client; kill -TERM $client; wait $client; echo "ignored $?"
set -m  # job control: background commands keep SIGINT (logs tail then ends with status 0)
{fast} {follow} > out-3 &
{started.format(n=3)}; kill -INT $client; wait $client; echo "int $?"
{REAL} {follow} > out-4 &
{started.format(n=4)}; kill -INT $client; wait $client; echo "real-int $?"
"""
    r = sb.run("bash", code, "dev", timeout=120)
    lines = r.stdout.split("\n")
    assert lines[:3] == ["term 143", "sigint-ignored 1", "ignored 143"], (r.stdout, r.stderr)
    assert lines[3].split()[1] == lines[4].split()[1], "SIGINT: not the real CLI's exit status"
    assert _children(sb) == []


# -- falling back to the real CLI ----------------------------------------------------------


def test_without_the_fork_server_the_real_cli_runs(sb):
    before = _served(sb)
    code = """\
RUNBOOK_AWS_ZYGOTE=/nonexistent/aws.sock aws sts get-caller-identity --query Account --output text
"""
    r = sb.run("bash", code, "dev")
    assert r.rc == 0 and r.stdout.strip() == "210987654321", r.stderr
    assert _served(sb) == before


def test_a_dead_fork_server_is_restarted(sb):
    first = sb.zygote_info()
    # No snippet can see it (its own PID namespace): killed from the worker's side.
    assert sb.call("sandbox_helpers:kill_and_reap_wait", pid=first["pid"])
    r = sb.run("bash", "aws sts get-caller-identity --query Account --output text", "dev")
    assert r.rc == 0 and r.stdout.strip() == "210987654321", r.stderr
    second = sb.zygote_info()
    assert second["ready"] and second["pid"] != first["pid"]
    assert second["starts"] == first["starts"] + 1
    assert second["status"]["served"] == 1


def test_a_removed_socket_means_a_new_fork_server(sb):
    first = sb.zygote_info()
    # A snippet cannot remove it (read-only to the run)...
    r = sb.run("bash", 'rm "$RUNBOOK_AWS_ZYGOTE" 2>&1 || echo kept', "dev")
    assert r.stdout.endswith("Read-only file system\nkept\n"), (r.stdout, r.stderr)
    # ... but when it is gone anyway, the next run starts a new fork server.
    sb.call("sandbox_helpers:remove_file", path=first["socket"])
    r = sb.run("bash", "aws sts get-caller-identity --query Account --output text", "dev")
    assert r.rc == 0 and r.stdout.strip() == "210987654321", r.stderr
    second = sb.zygote_info()
    assert second["pid"] != first["pid"] and second["status"]["served"] == 1


def test_fast_cli_off_is_the_real_cli(tmp_path):
    with Sandbox(AWS_CLI, python_path=[TESTS], fast_cli=False) as box:
        box.set_credentials(EnvCredentials("t", "123456789012", REGION, "AKIANOTISSUED", "x"))
        r = box.run("bash", 'echo "$RUNBOOK_AWS"; type aws | grep -c aws-fast || true; '
                    "aws sts get-caller-identity --query Account --output text", "t")
        info = box.zygote_info()
    assert r.rc == 0, r.stderr
    assert r.stdout.split() == [AWS_CLI, "0", "123456789012"]
    assert info["enabled"] is False and info["pid"] is None


# -- the fork server widens nothing -------------------------------------------------------


def test_the_fork_server_holds_no_secret_of_the_caller(decoy):  # noqa: F811
    with Sandbox(AWS_CLI, python_path=[TESTS]) as box:
        creds = _register(box, "dev", "210987654321")
        info = box.zygote_info(wait=True)
        code = f"""\
cat /proc/{info['pid']}/environ 2>/dev/null && echo "reached the fork server" || true
aws sts get-caller-identity --query Account --output text
"""
        r = box.run("bash", code, "dev")
    assert r.rc == 0, r.stderr
    assert r.stdout.strip() == creds.account  # out of the snippet's sight...
    environ = "\n".join(f"{k}={v}" for k, v in info["environment"].items())  # ... and clean
    for secret in decoy.secrets:
        assert secret not in environ, secret
    names = {line.split("=", 1)[0] for line in environ.splitlines() if "=" in line}
    assert not {n for n in names if "KEY" in n or "SECRET" in n or "TOKEN" in n or "PROFILE" in n}
    assert decoy.listener.hits == []
    assert not decoy.marker.exists()


# -- the client on its own -----------------------------------------------------------------


def test_client_starts_fast_and_falls_back_without_a_socket(tmp_path):
    fake = tmp_path / "fake-aws"
    fake.write_text("#!/bin/sh\necho \"real: $0 $*\"\necho \"pid $$\"\nexit 7\n")
    fake.chmod(0o755)
    env = {"PATH": "/usr/bin:/bin", "RUNBOOK_AWS_ZYGOTE": str(tmp_path / "missing.sock"),
           "RUNBOOK_AWS_REAL": str(fake)}
    client = REPO / "runbook" / "gate" / "forkserver" / "cli" / "client.py"
    proc = subprocess.Popen([str(client), "s3", "ls", "--x=1 2"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=30)
    # The fallback is an exec in place: the real CLI runs as the client's own process.
    assert (proc.returncode, out, err) == (7, f"real: {fake} s3 ls --x=1 2\npid {proc.pid}\n", "")
    # It starts fast because it imports next to nothing: no botocore, no awscli, no site.
    shebang = client.read_text(encoding="utf-8").splitlines()[0].removeprefix("#!").split()
    traced = subprocess.run([*shebang, "-X", "importtime", str(client), "s3", "ls"], env=env,
                            capture_output=True, text=True, timeout=30)
    imported = {line.split("|")[-1].strip().split(".")[0] for line in traced.stderr.splitlines()
                if line.startswith("import time:") and "|" in line}
    assert "protocol" in imported and "_socket" in imported, traced.stderr
    assert not imported & {"botocore", "awscli", "site", "json", "socket", "subprocess"}, sorted(imported)
