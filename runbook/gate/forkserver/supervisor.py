"""The sandbox worker's side of the AWS CLI fork server: set up, started, watched, restarted.

The fork server (``cli/server.py``) runs under the CLI's own interpreter as a child of the
sandbox worker, inside the same namespaces, with the snippets' clean base environment and no
credentials. Snippets' ``aws`` is then ``cli/client.py``, run in place (``-S -E``), which finds
the socket and the real CLI in ``RUNBOOK_AWS_ZYGOTE`` and ``RUNBOOK_AWS_REAL``. The fork server
holds no AWS state: it survives a moto reset and is restarted when it dies.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from runbook.gate.forkserver.cli import protocol
from runbook.gate.sandbox import environment
from runbook.gate.sandbox.processes import children_of
from runbook.gate.sandbox.shims import shell_quote, write_aws_shims
from runbook.gate.static.cli import python_shebang

__all__ = ["ForkServer"]

CLI_DIR = Path(__file__).resolve().parent / "cli"
READY_TIMEOUT = 30.0  # seconds a run waits for a starting fork server
MAX_FAILED_STARTS = 3  # then the real CLI runs every command for this sandbox
# Services whose models the fork server parses once for every command (the ones an operations
# runbook of a serverless application calls); others are read by each command, as usual.
PRELOAD_SERVICES = (
    "apigateway", "apigatewayv2", "cloudformation", "cloudfront", "cloudtrail", "cloudwatch",
    "dynamodb", "events", "iam", "lambda", "logs", "route53", "s3", "secretsmanager", "sns",
    "sqs", "ssm", "sts", "synthetics", "xray",
)


class ForkServer:
    """One sandbox's fork server. ``enabled`` turns False for good when the CLI cannot be
    forked from (not a Python script) or the server failed to start too often: then every
    command runs the real CLI, and ``note`` says why."""

    def __init__(self, base: Path, aws_cli: str, endpoint_url: str, python_path: Path) -> None:
        """Check the CLI can be forked from, choose the socket's path, and write the client's
        launcher ``shims/aws-fast`` with the ``aws`` function and PATH shim in front of it
        (``shims/fast``). ``python_path``: the snippets' PYTHONPATH (the sitecustomize)."""
        self.enabled = True
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready = False
        self.dir = base / "zygote"
        self.socket = ""
        self.client = ""
        self.argv: list[str] = []
        self.failed_starts = 0
        self.starts = 0
        self.note = ""  # why the fork server is not in use, if it is not
        self.tmpdir: Path | None = None  # the socket's dir when the sandbox's path is too long
        self.shims = base / "shims" / "fast"
        self.prelude = self.shims / "prelude.sh"
        try:
            interpreter = python_shebang(aws_cli)
        except OSError:
            interpreter = None
        if interpreter is None:
            self.enabled = False
            self.note = f"{aws_cli} is not a Python script: every command runs it"
            return
        for sub in ("home", "tmp", "cwd"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        sock = self.dir / "aws.sock"
        if len(os.fsencode(sock)) > 100:  # sun_path is 108 bytes: a short private dir instead
            self.tmpdir = Path(tempfile.mkdtemp(prefix="rbz-", dir="/tmp"))
            sock = self.tmpdir / "aws.sock"
        self.socket = str(sock)
        self.argv = [*interpreter, str(CLI_DIR / "server.py"), self.socket, aws_cli,
                     "--preload", ",".join(PRELOAD_SERVICES)]
        self.env = environment.snippet_base("/usr/bin:/bin", str(self.dir / "home"),
                                            str(self.dir / "tmp"), str(python_path))
        self.client = str(_write_client_launcher(base / "shims" / "aws-fast", interpreter[0]))
        write_aws_shims(self.shims, self.client, endpoint_url)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        self.ready = False
        self.starts += 1
        try:
            self.proc = subprocess.Popen(
                self.argv, cwd=self.dir / "cwd", env=self.env,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None,  # stderr: our log
                start_new_session=True, close_fds=True,
            )
        except OSError as exc:
            self.proc = None
            self.failed_starts += 1
            self.note = f"cannot start the fork server: {exc}"
            print(f"runbook sandbox: {self.note}", file=sys.stderr)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        self.ready = False
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

    def close(self) -> None:
        self.stop()
        if self.tmpdir is not None:
            shutil.rmtree(self.tmpdir, ignore_errors=True)

    def usable(self) -> bool:
        """Is the fork server ready for a run? (Restarted when it died; waited for when starting.)"""
        if not self.enabled:
            return False
        if self.proc is not None and self.proc.poll() is not None:
            died_ready = self.ready
            code = self.proc.returncode
            self.stop()
            if not died_ready:
                self.failed_starts += 1
            print(f"runbook sandbox: the AWS CLI fork server exited ({code}); "
                  f"{'restarting it' if self.failed_starts < MAX_FAILED_STARTS else 'giving up'}",
                  file=sys.stderr)
        if self.proc is None:
            if self.failed_starts >= MAX_FAILED_STARTS:
                self.enabled = False
                self.note = (f"the fork server failed to start {self.failed_starts} "
                             "times: every command runs the real CLI (see worker.log)")
                return False
            self.start()
            if self.proc is None:
                return False
        if self.ready:
            if os.path.exists(self.socket):
                return True
            # Its socket is gone (a snippet removed it): a new fork server makes a new one.
            print("runbook sandbox: the fork server's socket is gone; restarting it", file=sys.stderr)
            self.stop()
            return self.usable()
        stdout = self.proc.stdout
        assert stdout is not None  # started with stdout=PIPE
        ready, _, _ = select.select([stdout], [], [], READY_TIMEOUT)
        line = stdout.readline() if ready else b""
        if line.strip() == b"ready":
            self.ready = True
            self.failed_starts = 0
            self.note = ""
            return True
        # Not ready in time, or it exited: this run uses the real CLI; the next one retries.
        self.failed_starts += 1
        self.note = "the fork server did not become ready (see worker.log)"
        self.stop()
        return False

    # -- state -----------------------------------------------------------------------------

    def running_pid(self) -> int | None:
        """The fork server's pid while it runs."""
        if self.proc is not None and self.proc.poll() is None:
            return self.proc.pid
        return None

    def kill_children(self, timeout: float = 2.0) -> None:
        """SIGKILL the fork server's children, and wait until it has reaped them."""
        pid = self.running_pid()
        if pid is None:
            return
        children = children_of(pid)
        if not children:
            return
        for child in children:
            try:
                os.kill(child, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        deadline = time.monotonic() + timeout
        while children_of(pid) and time.monotonic() < deadline:
            time.sleep(0.002)

    def info(self) -> dict[str, Any]:
        """The fork server's state: for tests and diagnostics."""
        pid = self.running_pid()
        info: dict[str, Any] = {
            "enabled": self.enabled,
            "running": pid is not None,
            "ready": self.ready,
            "starts": self.starts,
            "note": self.note,
            "socket": self.socket,
            "client": self.client,
            "pid": self.proc.pid if self.proc is not None else None,
            "environment": dict(self.env) if self.enabled else {},
        }
        if pid is not None:
            info["children"] = children_of(pid)
            if self.ready:
                try:
                    info["status"] = status(self.socket)
                except OSError as exc:
                    info["status_error"] = str(exc)
        return info


def status(path: str) -> dict[str, Any]:
    """The fork server's own account of itself (a ``KIND_STATUS`` request)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(path)
        sock.sendall(protocol.header(protocol.KIND_STATUS, 0))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    if data[:1] != protocol.STATUS:
        raise OSError(f"unexpected answer {data[:40]!r}")
    answer: dict[str, Any] = json.loads(data[1:])
    return answer


def _write_client_launcher(path: Path, python: str) -> Path:
    """``path``: what runs ``cli/client.py`` in place with ``python -S -E``. A symlink to the
    client when its own ``#!`` line names that interpreter (no cost at all), else a one-line
    ``sh`` script."""
    client = CLI_DIR / "client.py"
    if not (python.startswith("/") and os.path.basename(python).startswith("python")):
        python = "/usr/bin/python3"
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink() or path.exists():
        path.unlink()
    own = python_shebang(str(client))
    if own is not None and own[0] == python:
        path.symlink_to(client)
    else:
        quoted = [shell_quote(a) for a in (python, "-S", "-E", str(client))]
        path.write_text(f"#!/bin/sh\nexec {' '.join(quoted)} \"$@\"\n")
        path.chmod(0o755)
    return path
