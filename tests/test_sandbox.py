"""The sandbox: no snippet sees the caller's credentials or reaches anything but moto."""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

import runbook.gate.sandbox.sandbox as sandbox_mod
from runbook.gate.sandbox.sandbox import EnvCredentials, GateError, Sandbox, SandboxWarning

from .conftest import require_isolation

AWS_CLI = os.environ.get("RUNBOOK_AWS_CLI", "/usr/bin/aws")
TESTS = Path(__file__).resolve().parent
REGION = "eu-west-1"


# Missing CLI or namespaces: a failure when RUNBOOK_AWS_CLI is set, else a skip (tests/conftest.py).
pytestmark = pytest.mark.requires_aws_cli
needs_netns = pytest.mark.requires_isolation("netns")
needs_full = pytest.mark.requires_isolation("full")


def _sandbox(**kw) -> Sandbox:
    return Sandbox(AWS_CLI, python_path=[TESTS], **kw)


def _register(sb: Sandbox, env: str, account: str) -> EnvCredentials:
    key = sb.call("sandbox_helpers:create_user_key", account=account, user=f"runbook-{env}")
    creds = EnvCredentials(env=env, account=account, region=REGION, **key)
    sb.set_credentials(creds)
    return creds


# -- decoys planted in the caller's environment ------------------------------------------


@pytest.fixture
def listener():
    """A TCP listener on the host's loopback that records every connection it gets."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    srv.settimeout(0.2)
    hits: list[bytes] = []
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(1)
                try:
                    hits.append(conn.recv(4096) or b"<connect>")
                except OSError:
                    hits.append(b"<connect>")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield SimpleNamespace(port=srv.getsockname()[1], hits=hits)
    stop.set()
    thread.join()
    srv.close()


@pytest.fixture
def decoy(tmp_path, monkeypatch, listener):
    home = tmp_path / "home"
    aws = home / ".aws"
    aws.mkdir(parents=True)
    marker = tmp_path / "credential_process_ran"
    process = (f"/bin/sh -c 'touch {marker}; echo "
               '{\\"Version\\": 1, \\"AccessKeyId\\": \\"AKIACREDPROCESSDECOY\\", '
               '\\"SecretAccessKey\\": \\"CREDPROCESSSECRET\\"}\'')
    (aws / "config").write_text(
        f"[default]\nregion = us-west-2\ncredential_process = {process}\n\n"
        f"[profile prod]\nregion = us-west-2\ncredential_process = {process}\n"
    )
    (aws / "credentials").write_text(
        "[prod]\naws_access_key_id = AKIAREALLOOKINGKEY42\n"
        "aws_secret_access_key = REALSECRETDECOYREALSECRETDECOY\n"
    )
    token = tmp_path / "web-identity-token"
    token.write_text("DECOYWEBIDENTITYTOKEN")
    proxy = f"http://127.0.0.1:{listener.port}"
    planted = {
        "HOME": str(home),
        "AWS_PROFILE": "prod",
        "AWS_DEFAULT_PROFILE": "prod",
        "AWS_ACCESS_KEY_ID": "AKIAREALLOOKINGKEY01",
        "AWS_SECRET_ACCESS_KEY": "REALSECRETFROMTHEENVIRONMENT",
        "AWS_SESSION_TOKEN": "REALSESSIONTOKENDECOY",
        "AWS_ROLE_ARN": "arn:aws:iam::999999999999:role/prod-admin",
        "AWS_WEB_IDENTITY_TOKEN_FILE": str(token),
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": f"{proxy}/creds",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials/decoy",
        "AWS_CONFIG_FILE": str(aws / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(aws / "credentials"),
        "AWS_ENDPOINT_URL": proxy,
        "HTTPS_PROXY": proxy, "HTTP_PROXY": proxy, "https_proxy": proxy, "http_proxy": proxy,
        "ALL_PROXY": proxy,
    }
    for k, v in planted.items():
        monkeypatch.setenv(k, v)
    secrets = ["AKIAREALLOOKINGKEY", "REALSECRET", "REALSESSIONTOKEN", "DECOYWEBIDENTITYTOKEN",
               "AKIACREDPROCESSDECOY", "prod-admin", "AWS_PROFILE", "AWS_ROLE_ARN",
               "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS", "HTTPS_PROXY",
               "HTTP_PROXY", "ALL_PROXY", "https_proxy", str(home), f":{listener.port}"]
    return SimpleNamespace(home=home, marker=marker, listener=listener, secrets=secrets)


DECOY_SNIPPET = """\
env | sort
echo '--- aws files'
cat ~/.aws/credentials ~/.aws/config
echo '--- identity'
aws sts get-caller-identity --query Account --output text
aws sqs create-queue --queue-name via-function >/dev/null
/usr/bin/env aws sqs create-queue --queue-name via-env >/dev/null
echo via-xargs | xargs -I{} aws sqs create-queue --queue-name {} >/dev/null
"""

BOTO3_SNIPPET = """\
import os, boto3
print(sorted(k for k in os.environ if "PROXY" in k.upper() or k.startswith("AWS_")))
print("account", boto3.client("sts").get_caller_identity()["Account"])
# Even a client pointed at the real endpoint lands on moto.
real = boto3.client("sts", endpoint_url="https://sts.amazonaws.com")
print("account-real-endpoint", real.get_caller_identity()["Account"])
boto3.client("sqs").create_queue(QueueName="via-boto3")
"""


@pytest.mark.parametrize("mode", [
    pytest.param("isolated", marks=needs_netns),
    "no-netns",  # the same checks with every defence but the namespaces
])
def test_decoys_never_reach_a_snippet(decoy, monkeypatch, mode):
    if mode == "no-netns":
        monkeypatch.setattr(sandbox_mod, "probe_isolation", lambda: "none")
        with pytest.warns(SandboxWarning):
            sb = _sandbox(allow_no_netns=True)
            sb.start()
    else:
        sb = _sandbox()
        sb.start()
    with sb:
        creds = _register(sb, "dev", "210987654321")
        bash = sb.run("bash", DECOY_SNIPPET, "dev")
        py = sb.run("python", BOTO3_SNIPPET, "dev")
        queues = sb.call("sandbox_helpers:queue_names", account=creds.account, region=REGION)

    assert bash.rc == 0, bash.stderr
    assert py.rc == 0, py.stderr
    for secret in decoy.secrets:
        assert secret not in bash.stdout + bash.stderr, secret
        assert secret not in py.stdout + py.stderr, secret
    assert f"AWS_ACCESS_KEY_ID={creds.access_key_id}\n" in bash.stdout
    assert "\nHOME=" in bash.stdout and f"HOME={decoy.home}\n" not in bash.stdout
    assert f"aws_access_key_id = {creds.access_key_id}" in bash.stdout  # ~/.aws is the sandbox's
    assert bash.stdout.rstrip().endswith(creds.account)  # sts answered from moto
    assert f"account {creds.account}\naccount-real-endpoint {creds.account}\n" in py.stdout
    assert "PROXY" not in py.stdout.split("\n")[0].upper().replace("NO_PROXY", "")
    # aws function, `/usr/bin/env aws`, `xargs aws` (sqs: the CLI v1 ignores AWS_ENDPOINT_URL
    # there) and boto3 all landed in moto, in the sandbox's account.
    assert queues == ["via-boto3", "via-env", "via-function", "via-xargs"]
    assert not decoy.marker.exists(), "the decoy credential_process ran"
    assert decoy.listener.hits == [], "something reached the decoy proxy/endpoint"


@needs_full
def test_isolated_snippet_cannot_reach_outside_or_read_host_secrets(decoy):
    code = f"""\
curl -m 2 -sS https://sts.amazonaws.com || echo "curl failed: $?"
python3 - <<'EOF'
import socket
try:
    socket.create_connection(("1.1.1.1", 443), timeout=30)  # a safety net: no route fails at once
    print("CONNECTED")
except OSError as e:
    print("socket failed:", e.errno, type(e).__name__)
EOF
# an explicit real endpoint is overridden too: the answer comes from moto
/usr/bin/aws sts get-caller-identity --endpoint-url https://sts.amazonaws.com --query Account --output text
cat {decoy.home}/.aws/credentials 2>&1 || echo "host credentials hidden"
cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | grep -c REALSECRET || echo "no host environ"
umount {decoy.home}/.aws 2>&1 || echo "cannot unmount"
echo "procs: $(ls -d /proc/[0-9]* | wc -l)"
"""
    with _sandbox() as sb:
        creds = _register(sb, "dev", "210987654321")
        r = sb.run("bash", code, "dev", timeout=20)
    assert r.rc == 0, r.stderr
    assert "curl failed: " in r.stdout
    assert "CONNECTED" not in r.stdout
    # ENETUNREACH: no route at all (a dropped packet would be a TimeoutError with errno None)
    assert "socket failed: 101 OSError\n" in r.stdout, r.stdout
    assert f"\n{creds.account}\n" in r.stdout
    assert "host credentials hidden" in r.stdout and "REALSECRET" not in r.stdout
    assert "no host environ" in r.stdout
    assert "cannot unmount" in r.stdout
    assert not decoy.marker.exists()
    assert decoy.listener.hits == []


# -- refusal and degraded modes -----------------------------------------------------------


def test_refuses_to_start_without_bubblewrap(monkeypatch):
    monkeypatch.setattr(sandbox_mod, "probe_isolation", lambda: "none")
    with pytest.raises(GateError, match="cannot start a bubblewrap sandbox"):
        _sandbox().start()


def test_missing_cli_is_a_gate_error(tmp_path):
    with pytest.raises(GateError, match="AWS CLI not found"):
        Sandbox(str(tmp_path / "aws")).start()


# -- the API ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sb():
    require_isolation("netns")
    with _sandbox() as box:
        yield box


def test_each_env_lands_in_its_own_account(sb):
    sb.reset()
    _register(sb, "dev", "111111111111")
    _register(sb, "prod", "222222222222")
    code = "aws sts get-caller-identity --query Account --output text"
    assert sb.run("bash", code, "dev").stdout.strip() == "111111111111"
    assert sb.run("bash", code, "prod").stdout.strip() == "222222222222"


def test_credentials_are_checked_and_reset_forgets_them(sb):
    sb.reset()
    key = sb.call("sandbox_helpers:create_user_key", account="333333333333", user="u")
    with pytest.raises(GateError, match="resolve to moto account 333333333333"):
        sb.set_credentials(EnvCredentials("dev", "444444444444", REGION, **key))
    sb.set_credentials(EnvCredentials("dev", "333333333333", REGION, **key))
    assert set(sb.credentials) == {"dev"}
    sb.reset()
    assert sb.credentials == {}
    with pytest.raises(GateError, match="no credentials registered for env 'dev'"):
        sb.run("bash", "true", "dev")


def test_call_errors_are_gate_errors(sb):
    with pytest.raises(GateError, match="seeding failed on purpose"):
        sb.call("sandbox_helpers:boom")
    with pytest.raises(GateError, match="module:function"):
        sb.call("sandbox_helpers")
    with pytest.raises(GateError, match="JSON"):
        sb.call("sandbox_helpers:queue_names", account=object())


@needs_full  # the run's own PID namespace is what ends every leftover with it
def test_each_run_gets_an_empty_scratch_and_leftovers_are_killed(sb):
    sb.set_credentials(EnvCredentials("t", "123456789012", REGION, "AKIANOTISSUED", "x"))
    first = sb.run("bash", "echo hi > out.txt; echo x > /tmp/left; echo y > ~/mark; "
                           "sleep 300 & setsid sleep 301 &", "t")
    second = sb.run("bash", "pwd; echo $HOME; ls -A . /tmp ~ | tr '\\n' ' '; echo; "
                            "ps -e -o comm= | grep -c sleep || true", "t")
    assert first.rc == 0 and second.rc == 0, first.stderr + second.stderr
    cwd, home, listing, sleeps = second.stdout.splitlines()
    assert (cwd, home) == ("/tmp/work", "/tmp/home")
    assert "out.txt" not in listing and "left" not in listing and "mark" not in listing, listing
    assert sb.isolation == "full"
    assert sleeps == "0"  # both sleeps, even the one in its own session, are gone


def test_set_euo_pipefail_applies(sb):
    sb.set_credentials(EnvCredentials("t", "123456789012", REGION, "AKIANOTISSUED", "x"))
    r = sb.run("bash", "false | cat\necho not-reached", "t")
    assert r.rc != 0 and "not-reached" not in r.stdout
    r = sb.run("bash", 'echo "$UNSET_VARIABLE"', "t")
    assert r.rc != 0 and "UNSET_VARIABLE" in r.stderr
    with pytest.raises(GateError, match="cannot run a 'ruby' snippet"):
        sb.run("ruby", "puts 1", "t")


# A forged reply for every request id the parent could be waiting for, to every descriptor
# of every process the snippet can see: the protocol channel must be out of its reach.
FORGERY = r"""
reply='{"id": %d, "ok": true, "result": {"rc": 0, "stdout": "forged\n", "stderr": "",'
reply+=' "seconds": 0.0, "timed_out": false}}\n'
forged() { for id in $(seq 1 400); do printf "$reply" "$id"; done; }
for fd in /proc/[0-9]*/fd/*; do forged 2>/dev/null > "$fd" || true; done
echo "sees: $(tr '\0' ' ' < /proc/1/cmdline | cut -d' ' -f1)" >&2
exit 1
"""


@pytest.mark.requires_isolation("full")
def test_a_snippet_cannot_forge_the_workers_verdict(sb):
    sb.set_credentials(EnvCredentials("t", "123456789012", REGION, "AKIANOTISSUED", "x"))
    r = sb.run("bash", FORGERY, "t")
    assert r.rc == 1, (r.stdout[:300], r.stderr[-300:])  # the real verdict, not a forged one
    assert "sees: /usr/bin/bwrap" in r.stderr  # PID 1 is the run's own, not the worker
    # The channel is intact: the next request gets its own, real answer.
    after = sb.run("bash", "echo real", "t")
    assert (after.rc, after.stdout) == (0, "real\n")


def test_output_is_capped_and_a_flood_stops_the_run(sb):
    sb.set_credentials(EnvCredentials("t", "123456789012", REGION, "AKIANOTISSUED", "x"))
    big = sb.run("bash", "head -c 3000000 /dev/zero | tr '\\0' o", "t")
    assert big.rc == 0 and not big.over_limit
    assert big.stdout.startswith("o" * 1000)
    assert big.stdout.endswith("[runbook sandbox: 1,951,424 more bytes of stdout cut; "
                               "1,048,576 of 3,000,000 kept]\n")
    flood = sb.run("bash", "yes >&2", "t", timeout=60)
    assert flood.over_limit and not flood.timed_out
    assert len(flood.stderr) < 1_100_000
    after = sb.run("bash", "echo fine", "t")
    assert (after.rc, after.stdout) == (0, "fine\n")


def test_a_snippet_cannot_take_the_worker_down(sb):
    sb.set_credentials(EnvCredentials("t", "123456789012", REGION, "AKIANOTISSUED", "x"))
    r = sb.run("bash", 'echo "parent $PPID"; kill -9 $PPID 1 2>/dev/null; pkill -9 -f runbook; true', "t")
    assert r.stdout.startswith("parent 1\n")  # the run's own init: the worker is out of sight
    after = sb.run("bash", "echo alive", "t")
    assert (after.rc, after.stdout) == (0, "alive\n")


# -- a kept world: freeze, restore, thaw (the moto host's fork) ----------------------------


def _queues(sb: Sandbox, creds: EnvCredentials) -> list[str]:
    return sb.call("sandbox_helpers:queue_names", account=creds.account, region=REGION)


def test_restore_brings_the_kept_world_back_and_thaw_adds_to_it(sb):
    sb.reset()
    creds = _register(sb, "dev", "555555555555")
    assert sb.run("bash", "aws sqs create-queue --queue-name kept >/dev/null", "dev").rc == 0
    sb.freeze()
    for name in ("changed", "changed-again"):  # each restore forgets what ran since
        assert sb.run("bash", f"aws sqs create-queue --queue-name {name} >/dev/null", "dev").rc == 0
        assert _queues(sb, creds) == sorted(["kept", name])
        sb.restore()
        assert _queues(sb, creds) == ["kept"]  # the credentials survive it too
    sb.run("bash", "aws sqs create-queue --queue-name lost >/dev/null", "dev")
    sb.thaw()  # the kept world, not the changed one, and what is seeded now is kept next
    assert _queues(sb, creds) == ["kept"]
    sb.run("bash", "aws sqs create-queue --queue-name added >/dev/null", "dev")
    sb.freeze()
    sb.run("bash", "aws sqs create-queue --queue-name later >/dev/null", "dev")
    sb.restore()
    assert _queues(sb, creds) == ["added", "kept"]
    sb.reset()  # the kept world goes with a reset
    assert sb.credentials == {}
    with pytest.raises(GateError, match="no frozen world"):
        sb.restore()


def test_a_kept_world_cannot_be_changed_through_a_connection_left_open(sb):
    """A client made before the freeze (a seeding function's, kept in memory) and used after
    it must reach the copy, never the template: the server closes every connection after its
    answer, so no pooled connection leads back to the kept world."""
    sb.reset()
    creds = _register(sb, "dev", "666666666666")
    sb.call("sandbox_helpers:kept_client_creates", account=creds.account, region=REGION, queue="before")
    sb.freeze()
    sb.call("sandbox_helpers:kept_client_creates", account=creds.account, region=REGION, queue="after")
    assert _queues(sb, creds) == ["after", "before"]
    sb.restore()
    assert _queues(sb, creds) == ["before"]  # "after" went to the copy, and went with it
    sb.reset()


def test_a_frozen_world_reset_twice_and_a_freeze_twice(sb):
    sb.reset()
    _register(sb, "dev", "777777777777")
    sb.freeze()
    with pytest.raises(GateError, match="frozen already"):
        sb.freeze()
    sb.thaw()
    sb.thaw()  # nothing kept: nothing to do
    sb.reset()
