"""The process that lives inside the sandbox: it owns the moto server and runs snippets.

Started by :class:`runbook.sandbox.Sandbox` as ``python -m runbook.sandbox_worker`` inside
a loopback-only network namespace (and, where the kernel allows, its own PID and mount
namespaces). It talks to the parent over stdin/stdout, one JSON object per line; every
other byte it or its libraries print goes to stderr (the parent sends that to a log file).

Requests: ``{"id": n, "op": ..., ...}``; replies: ``{"id": n, "ok": true, "result": ...}``
or ``{"id": n, "ok": false, "error": "...", "traceback": "..."}``.

Ops: ``init``, ``reset``, ``call``, ``check_credentials``, ``run``, ``exec_bare``,
``shutdown``. See the parent for their meaning; this module trusts its parent.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import shutil
import signal
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

    # -- ops -------------------------------------------------------------------------------

    def op_init(self, req: dict) -> dict:
        from moto.server import ThreadedMotoServer

        self.base = Path(req["base"])
        self.aws_cli = req["aws_cli"]
        self.pid_namespace = bool(req.get("pid_namespace")) and os.getpid() == 1
        self.keep_runs = bool(req.get("keep_runs"))
        started = time.monotonic()
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.endpoint_url = f"http://127.0.0.1:{port}"
        self._configure_moto()
        self._write_shims()
        return {
            "endpoint_url": self.endpoint_url,
            "pid": os.getpid(),
            "pid_namespace": self.pid_namespace,
            "moto_seconds": time.monotonic() - started,
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
        rundir = Path(tempfile.mkdtemp(prefix="run-", dir=self.base / "runs"))
        try:
            home, cwd, tmp = rundir / "home", rundir / "cwd", rundir / "tmp"
            for d in (home, cwd, tmp):
                d.mkdir()
            env = self._snippet_env(creds, home, tmp)
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

    def _snippet_env(self, creds: dict, home: Path, tmp: Path) -> dict[str, str]:
        """The whole environment of a snippet, built from nothing."""
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
        path = [str(self.shim_bin), "/usr/bin", "/bin"]
        cli_dir = os.path.dirname(self.aws_cli)
        if cli_dir and cli_dir not in path:
            path.append(cli_dir)
        return {
            "PATH": ":".join(path),
            "HOME": str(home),
            "TMPDIR": str(tmp),
            "LANG": "C.UTF-8",
            "BASH_ENV": str(self.prelude),
            "RUNBOOK_AWS": self.aws_cli,
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
                rc = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                _killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=KILL_GRACE)
                except subprocess.TimeoutExpired:
                    pass
                _killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                rc = 124
            seconds = time.monotonic() - started
        # Whatever the snippet left behind (background jobs, its own process group) goes
        # now: in our PID namespace everything but us is the snippet's.
        _killpg(proc.pid, signal.SIGKILL)
        if self.pid_namespace:
            self._kill_strays()
        return {
            "rc": rc,
            "stdout": _read_capped(out_path),
            "stderr": _read_capped(err_path),
            "seconds": seconds,
            "timed_out": timed_out,
        }

    def _kill_strays(self) -> None:
        me = os.getpid()
        for entry in os.listdir("/proc"):
            if entry.isdigit() and int(entry) != me:
                try:
                    os.kill(int(entry), signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:  # reap what was reparented to us (we are PID 1)
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                time.sleep(0.005)


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
