"""The process that lives inside the sandbox: it owns the moto server and runs snippets.

Started by :class:`runbook.sandbox.Sandbox` as ``python -m runbook.sandbox_worker`` inside
a loopback-only network namespace (and, where the kernel allows, its own PID and mount
namespaces). It talks to the parent over stdin/stdout, one JSON object per line; every
other byte it or its libraries print goes to stderr (the parent sends that to a log file).

Requests: ``{"id": n, "op": ..., ...}``; replies: ``{"id": n, "ok": true, "result": ...}``
or ``{"id": n, "ok": false, "error": "...", "traceback": "..."}``.

Ops: ``init``, ``reset``, ``call``, ``check_credentials``, ``run``, ``exec_bare``,
``zygote_info``, ``shutdown``. See the parent for their meaning; this module trusts its parent.

With ``fast_cli`` (the default) the worker also runs :mod:`runbook.aws_zygote`, a fork server
for the real CLI v2, as its child inside the same namespaces with the snippets' clean base
environment, and snippets' ``aws`` is :mod:`runbook.aws_client`, which hands each command to
it (or runs the real CLI when it cannot). The fork server holds no AWS state: it survives
``reset`` and is restarted when it dies.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request
from pathlib import Path
from typing import Any

MAX_OUTPUT = 2 * 1024 * 1024  # bytes kept per stream; the rest is cut (and said so)
KILL_GRACE = 0.25  # seconds between SIGTERM and SIGKILL on timeout
ZYGOTE_READY_TIMEOUT = 30.0  # seconds a run waits for a starting fork server
ZYGOTE_MAX_FAILED_STARTS = 3  # then the real CLI runs every command for this sandbox
FORKSERVER_DIR = Path(__file__).resolve().parents[1] / "forkserver" / "cli"
# Services whose models the fork server parses once for every command (the ones an operations
# runbook of a serverless application calls); others are read by each command, as usual.
PRELOAD_SERVICES = (
    "apigateway", "apigatewayv2", "cloudformation", "cloudfront", "cloudtrail", "cloudwatch",
    "dynamodb", "events", "iam", "lambda", "logs", "route53", "s3", "secretsmanager", "sns",
    "sqs", "ssm", "sts", "synthetics", "xray",
)

# The bash prelude: read by every non-interactive bash of a snippet through BASH_ENV, so
# subshells and `bash -c` children get it too. `aws` always carries the endpoint: the CLI v2
# 2.9.19 predates AWS_ENDPOINT_URL and v1 ignores it for sqs and others.
PRELUDE = """\
# runbook sandbox prelude (sourced through BASH_ENV)
aws() {{ command {aws} --endpoint-url {endpoint} "$@"; }}
export -f aws
"""

# An `aws` on PATH for everything that is not a bash function call: xargs aws, env aws,
# /usr/bin/env aws, sh -c 'aws ...', subprocess.run(["aws", ...]) from Python.
AWS_SHIM = """\
#!/bin/bash
exec {aws} --endpoint-url {endpoint} "$@"
"""

# Loaded by every Python of a snippet (PYTHONPATH), including the CLI v2 itself (Debian runs
# it on /usr/bin/python3 with a vendored `awscli.botocore`). When a botocore session module
# is imported, its Session.create_client is wrapped so that every client, whatever
# endpoint_url it was given, talks to the sandbox's moto. Nothing is imported eagerly: a
# snippet that never touches botocore pays for one meta-path lookup per import.
SITECUSTOMIZE = """\
# runbook sandbox: force every botocore client to the sandbox endpoint
import sys as _sys

_RUNBOOK_ENDPOINT = {endpoint!r}
_RUNBOOK_TARGETS = frozenset(("botocore.session", "awscli.botocore.session"))


def _runbook_patch(module):
    import functools
    import inspect

    session_cls = getattr(module, "Session", None)
    original = getattr(session_cls, "create_client", None)
    if original is None or getattr(original, "_runbook_forced", False):
        return
    signature = inspect.signature(original)

    @functools.wraps(original)
    def create_client(*args, **kwargs):
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError:
            kwargs["endpoint_url"] = _RUNBOOK_ENDPOINT
            return original(*args, **kwargs)
        bound.arguments["endpoint_url"] = _RUNBOOK_ENDPOINT
        return original(*bound.args, **bound.kwargs)

    create_client._runbook_forced = True
    session_cls.create_client = create_client


class _RunbookEndpointFinder:
    def find_spec(self, name, path=None, target=None):
        if name not in _RUNBOOK_TARGETS:
            return None
        for finder in _sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        exec_module = getattr(loader, "exec_module", None)
        if exec_module is None:
            return spec

        def exec_and_patch(module, _exec=exec_module):
            _exec(module)
            _runbook_patch(module)

        loader.exec_module = exec_and_patch
        return spec


for _name in _RUNBOOK_TARGETS:
    if _name in _sys.modules:
        _runbook_patch(_sys.modules[_name])
_sys.meta_path.insert(0, _RunbookEndpointFinder())
"""


class Worker:
    def __init__(self) -> None:
        self.server = None
        self.endpoint_url = ""
        self.base: Path | None = None
        self.aws_cli = ""
        self.shim_bin: Path | None = None
        self.shim_py: Path | None = None
        self.prelude: Path | None = None
        self.pid_namespace = False
        self.keep_runs = False
        self.fast_cli = False
        self.zygote: subprocess.Popen[bytes] | None = None
        self.zygote_ready = False
        self.zygote_dir: Path | None = None
        self.zygote_socket = ""
        self.zygote_client = ""
        self.zygote_argv: list[str] = []
        self.zygote_failed_starts = 0
        self.zygote_starts = 0
        self.zygote_note = ""  # why the fork server is not in use, if it is not
        self.zygote_tmpdir: Path | None = None  # the socket's dir when the sandbox's path is too long

    # -- ops -------------------------------------------------------------------------------

    def op_init(self, req: dict) -> dict:
        from moto.server import ThreadedMotoServer

        self.base = Path(req["base"])
        self.aws_cli = req["aws_cli"]
        self.pid_namespace = bool(req.get("pid_namespace")) and os.getpid() == 1
        self.keep_runs = bool(req.get("keep_runs"))
        self.fast_cli = bool(req.get("fast_cli", True))
        started = time.monotonic()
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.endpoint_url = f"http://127.0.0.1:{port}"
        self._configure_moto()
        self._write_shims()
        if self.fast_cli:
            self._setup_zygote()
        if self.fast_cli:
            self._start_zygote()  # warms up while the caller seeds; a run waits for it
        return {
            "endpoint_url": self.endpoint_url,
            "pid": os.getpid(),
            "pid_namespace": self.pid_namespace,
            "moto_seconds": time.monotonic() - started,
            "fast_cli": self.fast_cli,
        }

    def op_reset(self, req: dict) -> dict:
        self._moto_api("/moto-api/reset", {})
        self._configure_moto()
        return {}

    def op_call(self, req: dict) -> Any:
        module_name, _, func_name = req["target"].partition(":")
        if not module_name or not func_name:
            raise ValueError(f"call target must be 'module:function', got {req['target']!r}")
        func = importlib.import_module(module_name)
        for part in func_name.split("."):
            func = getattr(func, part)
        result = func(endpoint_url=self.endpoint_url, **req.get("kwargs", {}))
        json.dumps(result)  # fail here, with a clear traceback, if it is not JSON-able
        return result

    def op_check_credentials(self, req: dict) -> dict:
        import boto3

        creds = req["creds"]
        sts = boto3.client(
            "sts",
            endpoint_url=self.endpoint_url,
            region_name=creds["region"],
            aws_access_key_id=creds["access_key_id"],
            aws_secret_access_key=creds["secret_access_key"],
        )
        ident = sts.get_caller_identity()
        return {"account": ident["Account"], "arn": ident["Arn"]}

    def op_run(self, req: dict) -> dict:
        lang = req["lang"]
        creds = req["creds"]
        fast = self._zygote_usable()
        rundir = Path(tempfile.mkdtemp(prefix="run-", dir=self.base / "runs"))
        try:
            home, cwd, tmp = rundir / "home", rundir / "cwd", rundir / "tmp"
            for d in (home, cwd, tmp):
                d.mkdir()
            env = self._snippet_env(creds, home, tmp, fast=fast)
            if lang == "bash":
                script = rundir / "snippet.sh"
                script.write_text(req["code"])
                argv = ["/bin/bash", "--noprofile", "--norc", "-e", "-u", "-o", "pipefail", str(script)]
            elif lang == "python":
                script = rundir / "snippet.py"
                script.write_text(req["code"])
                argv = [sys.executable, "-u", str(script)]
            else:
                raise ValueError(f"unknown snippet language {lang!r} (bash or python)")
            return self._execute(argv, env, cwd, rundir, float(req["timeout"]))
        finally:
            if not self.keep_runs:
                shutil.rmtree(rundir, ignore_errors=True)

    def op_exec_bare(self, req: dict) -> dict:
        """Run argv with only credentials and region: no shims, no prelude (benchmarks)."""
        creds = req["creds"]
        rundir = Path(tempfile.mkdtemp(prefix="bare-", dir=self.base / "runs"))
        try:
            env = {
                "PATH": "/usr/bin:/bin",
                "HOME": str(rundir),
                "LANG": "C.UTF-8",
                "AWS_ACCESS_KEY_ID": creds["access_key_id"],
                "AWS_SECRET_ACCESS_KEY": creds["secret_access_key"],
                "AWS_DEFAULT_REGION": creds["region"],
                "AWS_CONFIG_FILE": "/dev/null",
                "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
                "AWS_EC2_METADATA_DISABLED": "true",
                "AWS_MAX_ATTEMPTS": "1",
                "AWS_PAGER": "",
            }
            return self._execute(list(req["argv"]), env, rundir, rundir, float(req["timeout"]))
        finally:
            shutil.rmtree(rundir, ignore_errors=True)

    def op_zygote_info(self, req: dict) -> dict:
        """The fork server's state: for tests and diagnostics."""
        if req.get("wait"):
            self._zygote_usable()
        info: dict[str, Any] = {
            "enabled": self.fast_cli,
            "running": self.zygote is not None and self.zygote.poll() is None,
            "ready": self.zygote_ready,
            "starts": self.zygote_starts,
            "note": self.zygote_note,
            "socket": self.zygote_socket,
            "client": self.zygote_client,
            "pid": self.zygote.pid if self.zygote is not None else None,
        }
        if info["running"]:
            info["children"] = _children_of(self.zygote.pid)  # type: ignore[union-attr]
            if self.zygote_ready:
                try:
                    info["status"] = _zygote_status(self.zygote_socket)
                except OSError as exc:
                    info["status_error"] = str(exc)
        return info

    # -- the AWS CLI fork server -----------------------------------------------------------

    def _setup_zygote(self) -> None:
        """Check the CLI can be forked from, write the client, choose the socket's path."""
        assert self.base is not None and self.shim_bin is not None
        interpreter = _python_shebang(self.aws_cli)
        if interpreter is None:
            self.fast_cli = False
            self.zygote_note = f"{self.aws_cli} is not a Python script: every command runs it"
            return
        self.zygote_dir = self.base / "zygote"
        for sub in ("home", "tmp", "cwd"):
            (self.zygote_dir / sub).mkdir(parents=True, exist_ok=True)
        sock = self.zygote_dir / "aws.sock"
        if len(os.fsencode(sock)) > 100:  # sun_path is 108 bytes: a short private dir instead
            self.zygote_tmpdir = Path(tempfile.mkdtemp(prefix="rbz-", dir="/tmp"))
            sock = self.zygote_tmpdir / "aws.sock"
        self.zygote_socket = str(sock)
        self.zygote_argv = [*interpreter, str(FORKSERVER_DIR / "server.py"), self.zygote_socket,
                            self.aws_cli, "--preload", ",".join(PRELOAD_SERVICES)]
        client = (FORKSERVER_DIR / "client.py").read_text()
        client = client.replace('DEFAULT_SOCKET = ""', f"DEFAULT_SOCKET = {self.zygote_socket!r}", 1)
        client = client.replace('DEFAULT_REAL = "/usr/bin/aws"', f"DEFAULT_REAL = {self.aws_cli!r}", 1)
        if interpreter[0].startswith("/") and os.path.basename(interpreter[0]).startswith("python"):
            client = client.replace("#!/usr/bin/python3 -SI", f"#!{interpreter[0]} -SI", 1)
        path = self.base / "shims" / "aws-fast"
        path.write_text(client)
        path.chmod(0o755)
        self.zygote_client = str(path)
        # The same `aws` function and PATH shim, in front of the client.
        client_q, endpoint_q = _shell_quote(self.zygote_client), _shell_quote(self.endpoint_url)
        fast = self.base / "shims" / "fast"
        (fast / "bin").mkdir(parents=True, exist_ok=True)
        (fast / "prelude.sh").write_text(PRELUDE.format(aws=client_q, endpoint=endpoint_q))
        shim = fast / "bin" / "aws"
        shim.write_text(AWS_SHIM.format(aws=client_q, endpoint=endpoint_q))
        shim.chmod(0o755)

    def _zygote_env(self) -> dict[str, str]:
        """The snippets' base environment without anything of a run (no credentials)."""
        assert self.zygote_dir is not None and self.shim_py is not None
        return {
            "PATH": "/usr/bin:/bin",
            "HOME": str(self.zygote_dir / "home"),
            "TMPDIR": str(self.zygote_dir / "tmp"),
            "LANG": "C.UTF-8",
            "PYTHONPATH": str(self.shim_py),
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_MAX_ATTEMPTS": "1",
            "AWS_PAGER": "",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }

    def _start_zygote(self) -> None:
        assert self.zygote_dir is not None
        self.zygote_ready = False
        self.zygote_starts += 1
        try:
            self.zygote = subprocess.Popen(
                self.zygote_argv, cwd=self.zygote_dir / "cwd", env=self._zygote_env(),
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None,  # stderr: our log
                start_new_session=True, close_fds=True,
            )
        except OSError as exc:
            self.zygote = None
            self.zygote_failed_starts += 1
            self.zygote_note = f"cannot start the fork server: {exc}"
            print(f"runbook sandbox: {self.zygote_note}", file=sys.stderr)

    def _stop_zygote(self) -> None:
        proc, self.zygote = self.zygote, None
        self.zygote_ready = False
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()

    def _zygote_usable(self) -> bool:
        """Is the fork server ready for a run? (Restarted when it died; waited for when starting.)"""
        if not self.fast_cli:
            return False
        if self.zygote is not None and self.zygote.poll() is not None:
            died_ready = self.zygote_ready
            code = self.zygote.returncode
            self._stop_zygote()
            if not died_ready:
                self.zygote_failed_starts += 1
            print(f"runbook sandbox: the AWS CLI fork server exited ({code}); "
                  f"{'restarting it' if self.zygote_failed_starts < ZYGOTE_MAX_FAILED_STARTS else 'giving up'}",
                  file=sys.stderr)
        if self.zygote is None:
            if self.zygote_failed_starts >= ZYGOTE_MAX_FAILED_STARTS:
                self.fast_cli = False
                self.zygote_note = (f"the fork server failed to start {self.zygote_failed_starts} "
                                    "times: every command runs the real CLI (see worker.log)")
                return False
            self._start_zygote()
            if self.zygote is None:
                return False
        if self.zygote_ready:
            if os.path.exists(self.zygote_socket):
                return True
            # Its socket is gone (a snippet removed it): a new fork server makes a new one.
            print("runbook sandbox: the fork server's socket is gone; restarting it", file=sys.stderr)
            self._stop_zygote()
            return self._zygote_usable()
        assert self.zygote.stdout is not None
        ready, _, _ = select.select([self.zygote.stdout], [], [], ZYGOTE_READY_TIMEOUT)
        line = self.zygote.stdout.readline() if ready else b""
        if line.strip() == b"ready":
            self.zygote_ready = True
            self.zygote_failed_starts = 0
            self.zygote_note = ""
            return True
        # Not ready in time, or it exited: this run uses the real CLI; the next one retries.
        self.zygote_failed_starts += 1
        self.zygote_note = "the fork server did not become ready (see worker.log)"
        self._stop_zygote()
        return False

    # -- helpers ---------------------------------------------------------------------------

    def _moto_api(self, path: str, body: dict) -> bytes:
        request = urllib.request.Request(
            self.endpoint_url + path,
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=30) as response:
            return response.read()

    def _configure_moto(self) -> None:
        # Before any function exists: moto switches the Lambda backend on this flag and
        # functions created under the other backend vanish.
        self._moto_api("/moto-api/config", {"lambda": {"use_docker": False}})

    def _write_shims(self) -> None:
        assert self.base is not None
        shims = self.base / "shims"
        self.shim_bin = shims / "bin"
        self.shim_py = shims / "python"
        for d in (self.shim_bin, self.shim_py, self.base / "runs"):
            d.mkdir(parents=True, exist_ok=True)
        aws_q, endpoint_q = _shell_quote(self.aws_cli), _shell_quote(self.endpoint_url)
        self.prelude = shims / "prelude.sh"
        self.prelude.write_text(PRELUDE.format(aws=aws_q, endpoint=endpoint_q))
        shim = self.shim_bin / "aws"
        shim.write_text(AWS_SHIM.format(aws=aws_q, endpoint=endpoint_q))
        shim.chmod(0o755)
        (self.shim_py / "sitecustomize.py").write_text(SITECUSTOMIZE.format(endpoint=self.endpoint_url))

    def _snippet_env(self, creds: dict, home: Path, tmp: Path, *, fast: bool = False) -> dict[str, str]:
        """The whole environment of a snippet, built from nothing.

        ``fast``: ``aws`` (the bash function and the PATH shim) is the fork server's client;
        otherwise the real CLI, exactly as without a fork server."""
        assert self.shim_bin and self.shim_py and self.prelude
        aws_dir = home / ".aws"
        aws_dir.mkdir()
        region = creds["region"]
        config = aws_dir / "config"
        config.write_text(f"[default]\nregion = {region}\noutput = json\ncli_pager =\n")
        credentials = aws_dir / "credentials"
        credentials.write_text(
            "[default]\n"
            f"aws_access_key_id = {creds['access_key_id']}\n"
            f"aws_secret_access_key = {creds['secret_access_key']}\n"
        )
        shims = self.base / "shims" / "fast" if fast else None  # type: ignore[operator]
        path = [str(shims / "bin" if shims else self.shim_bin), "/usr/bin", "/bin"]
        cli_dir = os.path.dirname(self.aws_cli)
        if cli_dir and cli_dir not in path:
            path.append(cli_dir)
        fast_vars = {"RUNBOOK_AWS_ZYGOTE": self.zygote_socket, "RUNBOOK_AWS_REAL": self.aws_cli} if fast else {}
        return {
            "PATH": ":".join(path),
            "HOME": str(home),
            "TMPDIR": str(tmp),
            "LANG": "C.UTF-8",
            "BASH_ENV": str(shims / "prelude.sh" if shims else self.prelude),
            "RUNBOOK_AWS": self.zygote_client if fast else self.aws_cli,
            **fast_vars,
            "PYTHONPATH": str(self.shim_py),
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "AWS_ACCESS_KEY_ID": creds["access_key_id"],
            "AWS_SECRET_ACCESS_KEY": creds["secret_access_key"],
            "AWS_DEFAULT_REGION": region,
            "AWS_REGION": region,
            "AWS_CONFIG_FILE": str(config),
            "AWS_SHARED_CREDENTIALS_FILE": str(credentials),
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_MAX_ATTEMPTS": "1",
            "AWS_PAGER": "",
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }

    def _execute(self, argv: list[str], env: dict, cwd: Path, rundir: Path, timeout: float) -> dict:
        out_path, err_path = rundir / "stdout", rundir / "stderr"
        timed_out = False
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            started = time.monotonic()
            proc = subprocess.Popen(
                argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                start_new_session=True, close_fds=True,
            )
            try:
                rc = _wait(proc, timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                _killpg(proc.pid, signal.SIGTERM)
                try:
                    _wait(proc, KILL_GRACE)
                except subprocess.TimeoutExpired:
                    pass
                _killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                rc = 124
            seconds = time.monotonic() - started
        # Whatever the snippet left behind (background jobs, its own process group) goes
        # now: in our PID namespace everything but us is the snippet's. So does every command
        # the fork server still runs for it (the real CLI would have been in the process group).
        _killpg(proc.pid, signal.SIGKILL)
        self._kill_zygote_children()
        if self.pid_namespace:
            self._kill_strays()
        return {
            "rc": rc,
            "stdout": _read_capped(out_path),
            "stderr": _read_capped(err_path),
            "seconds": seconds,
            "timed_out": timed_out,
        }

    def _kill_zygote_children(self, timeout: float = 2.0) -> None:
        """SIGKILL the fork server's children, and wait until it has reaped them."""
        zygote = self.zygote
        if zygote is None or zygote.poll() is not None:
            return
        children = _children_of(zygote.pid)
        if not children:
            return
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        deadline = time.monotonic() + timeout
        while _children_of(zygote.pid) and time.monotonic() < deadline:
            time.sleep(0.002)

    def _kill_strays(self) -> None:
        # Everything but us and the fork server is the snippet's (the fork server's children
        # included: a command the snippet left running).
        me = os.getpid()
        spared = {me}
        if self.zygote is not None and self.zygote.poll() is None:
            spared.add(self.zygote.pid)
        for pid in _pids():
            if pid not in spared:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:  # reap what was reparented to us (we are PID 1)
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid != 0:
                continue
            # Only the fork server (and the children it is reaping) may be left.
            if all(p in spared or _ppid(p) in spared - {me} for p in _pids()):
                return
            time.sleep(0.005)


def _wait(proc: subprocess.Popen[bytes], timeout: float) -> int:
    """``proc.wait(timeout)`` that returns as soon as the process ends: Popen.wait polls with
    sleeps doubling up to 50 ms, which costs a 35 ms snippet 30 ms more."""
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        return proc.wait(timeout=timeout)
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        ready = poller.poll(max(0.0, timeout) * 1000)
    finally:
        os.close(pidfd)
    if not ready:
        raise subprocess.TimeoutExpired(proc.args, timeout)
    return proc.wait()


def _pids() -> list[int]:
    return [int(e) for e in os.listdir("/proc") if e.isdigit()]


def _ppid(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return 0
    return int(stat.rsplit(b")", 1)[1].split()[1])


def _children_of(pid: int) -> list[int]:
    """Children of a single-threaded process (zombies included: not reaped yet)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children", "rb") as f:
            return sorted(int(p) for p in f.read().split())
    except FileNotFoundError:
        return []  # gone
    except OSError:  # no CONFIG_PROC_CHILDREN
        return sorted(p for p in _pids() if _ppid(p) == pid)


def _zygote_status(path: str) -> dict:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(path)
        sock.sendall(b"AWSZ" + bytes([2]) + (0).to_bytes(4, "big"))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    if data[:1] != b"S":
        raise OSError(f"unexpected answer {data[:40]!r}")
    return json.loads(data[1:])


def _python_shebang(script: str) -> list[str] | None:
    """The interpreter (and its one argument) of a Python script's ``#!`` line, else None."""
    try:
        with open(script, "rb") as f:
            first = f.readline(256)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    parts = first[2:].decode("utf-8", "replace").strip().split(None, 1)
    if not parts or "python" not in first.decode("utf-8", "replace"):
        return None
    return parts


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _read_capped(path: Path) -> str:
    with open(path, "rb") as f:
        data = f.read(MAX_OUTPUT + 1)
    text = data[:MAX_OUTPUT].decode("utf-8", errors="replace")
    if len(data) > MAX_OUTPUT:
        text += f"\n[runbook sandbox: output cut at {MAX_OUTPUT} bytes]\n"
    return text


def _shell_quote(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


def main() -> int:
    # stdout belongs to the protocol: keep a private copy and point fd 1 at stderr, so that
    # nothing moto, werkzeug or a seeding function prints can corrupt a reply.
    proto = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    worker = Worker()
    for line in sys.stdin:
        if not line.strip():
            continue
        req: dict = {}
        try:
            req = json.loads(line)
            op = req["op"]
            if op == "shutdown":
                worker._stop_zygote()
                if worker.zygote_tmpdir is not None:
                    shutil.rmtree(worker.zygote_tmpdir, ignore_errors=True)
                proto.write(json.dumps({"id": req.get("id"), "ok": True, "result": {}}) + "\n")
                break
            handler = getattr(worker, f"op_{op}", None)
            if handler is None:
                raise ValueError(f"unknown op {op!r}")
            reply = {"id": req.get("id"), "ok": True, "result": handler(req)}
        except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent
            if isinstance(exc, KeyboardInterrupt):
                raise
            reply = {
                "id": req.get("id"),
                "ok": False,
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(),
            }
        proto.write(json.dumps(reply) + "\n")
    # No graceful moto shutdown (werkzeug polls for half a second): nothing in the server is
    # worth keeping, and in our PID namespace our exit takes every leftover process along.
    proto.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
