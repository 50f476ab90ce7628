"""The process that lives inside the sandbox: it owns the moto server and runs snippets.

Started by :class:`runbook.gate.sandbox.sandbox.Sandbox` as ``python -m
runbook.gate.sandbox.worker`` inside a loopback-only network namespace (and, where the kernel
allows, its own PID and mount namespaces). It talks to the parent over stdin/stdout, one JSON
object per line (:mod:`runbook.gate.jsonlines` on the parent's side); every other byte it or
its libraries print goes to stderr (the parent sends that to a log file).

Requests: ``{"id": n, "op": ..., ...}``; replies: ``{"id": n, "ok": true, "result": ...}``
or ``{"id": n, "ok": false, "error": "...", "traceback": "..."}``.

Ops: ``init``, ``reset``, ``call``, ``check_credentials``, ``run``, ``exec_bare``,
``zygote_info``, ``shutdown``. See the parent for their meaning; this module trusts its parent.

With ``fast_cli`` (the default) the worker also runs a fork server for the real CLI v2
(:mod:`runbook.gate.forkserver.supervisor`), and snippets' ``aws`` is its client, which hands
each command to it (or runs the real CLI when it cannot). The fork server holds no AWS state:
it survives ``reset`` and is restarted when it dies.
"""

from __future__ import annotations

import ctypes
import importlib
import json
import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runbook.gate.forkserver.supervisor import ForkServer
from runbook.gate.sandbox import environment
from runbook.gate.sandbox.processes import killpg, pids, ppid
from runbook.gate.sandbox.shims import write_aws_shims, write_sitecustomize

if TYPE_CHECKING:
    from moto.server import ThreadedMotoServer

MAX_OUTPUT = 2 * 1024 * 1024  # bytes kept per stream; the rest is cut (and said so)
KILL_GRACE = 0.25  # seconds between SIGTERM and SIGKILL on timeout
PR_SET_DUMPABLE = 4  # prctl(2), <linux/prctl.h>


@dataclass(frozen=True)
class Layout:
    """Where the worker keeps its files, under the sandbox's directory."""

    base: Path
    runs: Path  # one directory per run
    shim_bin: Path  # the PATH `aws` in front of the real CLI
    shim_py: Path  # the sitecustomize, on every snippet's PYTHONPATH
    prelude: Path  # the bash `aws` function in front of the real CLI (BASH_ENV)


class Worker:
    def __init__(self) -> None:
        self.server: ThreadedMotoServer | None = None
        self.endpoint_url = ""
        self._layout: Layout | None = None
        self.aws_cli = ""
        self.pid_namespace = False
        self.keep_runs = False
        self.forkserver: ForkServer | None = None  # with fast_cli

    @property
    def layout(self) -> Layout:
        if self._layout is None:
            raise RuntimeError("the worker is not initialised (no init op yet)")
        return self._layout

    @property
    def fast_cli(self) -> bool:
        return self.forkserver is not None and self.forkserver.enabled

    # -- ops -------------------------------------------------------------------------------

    def op_init(self, req: dict[str, Any]) -> dict[str, Any]:
        from moto.server import ThreadedMotoServer

        base = Path(req["base"])
        self.aws_cli = req["aws_cli"]
        self.pid_namespace = bool(req.get("pid_namespace")) and os.getpid() == 1
        self.keep_runs = bool(req.get("keep_runs"))
        started = time.monotonic()
        server = self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        self.endpoint_url = f"http://127.0.0.1:{port}"
        self._configure_moto()
        layout = self._layout = self._write_shims(base)
        if req.get("fast_cli", True):
            self.forkserver = ForkServer(base, self.aws_cli, self.endpoint_url, layout.shim_py)
            if self.forkserver.enabled:
                self.forkserver.start()  # warms up while the caller seeds; a run waits for it
        return {
            "endpoint_url": self.endpoint_url,
            "pid": os.getpid(),
            "pid_namespace": self.pid_namespace,
            "moto_seconds": time.monotonic() - started,
            "fast_cli": self.fast_cli,
        }

    def op_reset(self, req: dict[str, Any]) -> dict[str, Any]:
        self._moto_api("/moto-api/reset", {})
        self._configure_moto()
        return {}

    def op_call(self, req: dict[str, Any]) -> Any:
        module_name, _, func_name = req["target"].partition(":")
        if not module_name or not func_name:
            raise ValueError(f"call target must be 'module:function', got {req['target']!r}")
        func: Any = importlib.import_module(module_name)
        for part in func_name.split("."):
            func = getattr(func, part)
        result = func(endpoint_url=self.endpoint_url, **req.get("kwargs", {}))
        json.dumps(result)  # fail here, with a clear traceback, if it is not JSON-able
        return result

    def op_check_credentials(self, req: dict[str, Any]) -> dict[str, Any]:
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

    def op_run(self, req: dict[str, Any]) -> dict[str, Any]:
        lang = req["lang"]
        creds = req["creds"]
        fast = self.forkserver is not None and self.forkserver.usable()
        rundir = Path(tempfile.mkdtemp(prefix="run-", dir=self.layout.runs))
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

    def op_exec_bare(self, req: dict[str, Any]) -> dict[str, Any]:
        """Run argv with only credentials and region: no shims, no prelude (benchmarks)."""
        creds = req["creds"]
        rundir = Path(tempfile.mkdtemp(prefix="bare-", dir=self.layout.runs))
        try:
            env = {
                **environment.base("/usr/bin:/bin", str(rundir)),
                **environment.credentials(creds["access_key_id"], creds["secret_access_key"],
                                          creds["region"]),
                **environment.NO_CONFIG_FILES,
                **environment.NO_PAGER,
            }
            return self._execute(list(req["argv"]), env, rundir, rundir, float(req["timeout"]))
        finally:
            shutil.rmtree(rundir, ignore_errors=True)

    def op_zygote_info(self, req: dict[str, Any]) -> dict[str, Any]:
        """The fork server's state: for tests and diagnostics."""
        if self.forkserver is None:
            return {"enabled": False, "running": False, "ready": False, "starts": 0, "note": "",
                    "socket": "", "client": "", "pid": None}
        if req.get("wait"):
            self.forkserver.usable()
        return self.forkserver.info()

    def shutdown(self) -> None:
        if self.forkserver is not None:
            self.forkserver.close()

    # -- helpers ---------------------------------------------------------------------------

    def _moto_api(self, path: str, body: dict[str, Any]) -> bytes:
        request = urllib.request.Request(
            self.endpoint_url + path,
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=30) as response:
            data: bytes = response.read()
            return data

    def _configure_moto(self) -> None:
        # Before any function exists: moto switches the Lambda backend on this flag and
        # functions created under the other backend vanish.
        self._moto_api("/moto-api/config", {"lambda": {"use_docker": False}})

    def _write_shims(self, base: Path) -> Layout:
        shims = base / "shims"
        layout = Layout(base=base, runs=base / "runs", shim_bin=shims / "bin",
                        shim_py=shims / "python", prelude=shims / "prelude.sh")
        for d in (layout.shim_bin, layout.shim_py, layout.runs):
            d.mkdir(parents=True, exist_ok=True)
        write_aws_shims(shims, self.aws_cli, self.endpoint_url)
        write_sitecustomize(layout.shim_py, self.endpoint_url)
        return layout

    def _snippet_env(self, creds: dict[str, str], home: Path, tmp: Path, *,
                     fast: bool = False) -> dict[str, str]:
        """The whole environment of a snippet, built from nothing.

        ``fast``: ``aws`` (the bash function and the PATH shim) is the fork server's client;
        otherwise the real CLI, exactly as without a fork server."""
        layout = self.layout
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
        forkserver = self.forkserver if fast else None
        if forkserver is not None:
            shim_bin, prelude, aws = forkserver.shims / "bin", forkserver.prelude, forkserver.client
            fast_vars = {"RUNBOOK_AWS_ZYGOTE": forkserver.socket, "RUNBOOK_AWS_REAL": self.aws_cli}
        else:
            shim_bin, prelude, aws = layout.shim_bin, layout.prelude, self.aws_cli
            fast_vars = {}
        path = [str(shim_bin), "/usr/bin", "/bin"]
        cli_dir = os.path.dirname(self.aws_cli)
        if cli_dir and cli_dir not in path:
            path.append(cli_dir)
        return {
            **environment.snippet_base(":".join(path), str(home), str(tmp), str(layout.shim_py)),
            "BASH_ENV": str(prelude),
            "RUNBOOK_AWS": aws,
            **fast_vars,
            **environment.credentials(creds["access_key_id"], creds["secret_access_key"], region),
            "AWS_REGION": region,
            "AWS_CONFIG_FILE": str(config),
            "AWS_SHARED_CREDENTIALS_FILE": str(credentials),
            "AWS_ENDPOINT_URL": self.endpoint_url,
        }

    def _execute(self, argv: list[str], env: dict[str, str], cwd: Path, rundir: Path,
                 timeout: float) -> dict[str, Any]:
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
                killpg(proc.pid, signal.SIGTERM)
                try:
                    _wait(proc, KILL_GRACE)
                except subprocess.TimeoutExpired:
                    pass
                killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                rc = 124
            seconds = time.monotonic() - started
        # Whatever the snippet left behind (background jobs, its own process group) goes
        # now: in our PID namespace everything but us is the snippet's. So does every command
        # the fork server still runs for it (the real CLI would have been in the process group).
        killpg(proc.pid, signal.SIGKILL)
        if self.forkserver is not None:
            self.forkserver.kill_children()
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
        # Everything but us and the fork server is the snippet's (the fork server's children
        # included: a command the snippet left running).
        me = os.getpid()
        spared = {me}
        forkserver_pid = self.forkserver.running_pid() if self.forkserver is not None else None
        if forkserver_pid is not None:
            spared.add(forkserver_pid)
        for pid in pids():
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
            if all(p in spared or ppid(p) in spared - {me} for p in pids()):
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


def _read_capped(path: Path) -> str:
    with open(path, "rb") as f:
        data = f.read(MAX_OUTPUT + 1)
    text = data[:MAX_OUTPUT].decode("utf-8", errors="replace")
    if len(data) > MAX_OUTPUT:
        text += f"\n[runbook sandbox: output cut at {MAX_OUTPUT} bytes]\n"
    return text


def _not_dumpable() -> None:
    """Keep snippets (same uid, no capabilities) out of this process: with the dumpable flag
    off, /proc/<worker>/fd, mem and environ are closed to them and so is ptrace, so no snippet
    can write a forged reply into the protocol's descriptor. Children get the flag back on exec."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE, 0) failed")


def main() -> int:
    _not_dumpable()
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
        req: dict[str, Any] = {}
        try:
            req = json.loads(line)
            op = req["op"]
            if op == "shutdown":
                worker.shutdown()
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
