"""A sandbox that runs runbook snippets for real, against moto, and nowhere else.

A runbook command is copied from a web page into a shell that holds prod credentials; the
verification gate must never be that shell. One :class:`Sandbox` is one worker process
(:mod:`runbook.gate.sandbox.worker`) that holds a moto server and runs every snippet as its own
child. The defences, outermost first:

* **A bubblewrap sandbox** (:func:`isolation.confine`) around the worker: loopback only (a
  request to anything but the local moto server fails at ``connect()``), the host read-only,
  no home directory, no project, no /run and so no host socket, its own PID, IPC and UTS
  namespaces, no capabilities, and uid nobody when the gate runs as root. The worker's files
  are bound at :data:`STATE`; its /tmp is the scratch of the runs, SCRATCH_BYTES at most.
* **Every snippet is a limited run** (:func:`isolation.limited`): its own user and PID
  namespaces, so its processes cannot see or signal the worker and all end with it; nothing
  writable but the scratch, which holds its HOME, working directory and TMPDIR and is emptied
  after it; hard limits on processes, memory, file size and CPU time (RUN_LIMITS), and a wall
  time of at most MAX_TIMEOUT. Its output is read through pipes, kept up to a cap, and the run
  is stopped past OUTPUT_LIMIT (:mod:`runbook.gate.sandbox.capture`).
* **An environment built from nothing** for the worker and for every snippet: no variable of
  the caller (``AWS_PROFILE``, keys, ``AWS_ROLE_ARN``, ``AWS_CONTAINER_CREDENTIALS_*``,
  proxies ...) reaches them. Each snippet's ``~/.aws`` holds only the moto credentials of its
  environment.
* **The endpoint is forced, not suggested.** ``aws`` is a bash function (exported, and sourced
  through ``BASH_ENV`` into every child bash) and an executable on ``PATH`` that both add
  ``--endpoint-url``; a ``sitecustomize`` on ``PYTHONPATH`` makes every botocore client (boto3 in
  a Python snippet, and the CLI v2's vendored botocore) use the moto endpoint.
* **The verdict channel is out of reach**: the worker is not dumpable, so not even a command
  the fork server runs (same uid, outside the run's namespaces) can open its descriptors.

**Speed** (``fast_cli``, on by default): the CLI v2 spends ~450 ms of every call importing
itself. The worker runs a fork server for it (``runbook/gate/forkserver/cli/server.py``,
supervised by :mod:`runbook.gate.forkserver.supervisor`) inside the same namespaces, with the
snippets' clean base environment and no credentials; snippets' ``aws`` is then a small client
(``forkserver/cli/client.py``) that hands the command, with its own
environment, working directory and file descriptors, to a fresh fork of an already imported
CLI (~80 ms). What the command does and prints is the real CLI's; when the fork server cannot
reproduce a call's conditions, or is not there, the client runs the real CLI itself.

``endpoint_url`` is an address inside the sandbox's network namespace: the caller cannot
reach it. Seed the world with :meth:`Sandbox.call`, which runs a function inside the worker.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
import weakref
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from runbook.errors import GateError
from runbook.gate.jsonlines import ChildExited, JsonLinesClient, NoAnswer
from runbook.gate.sandbox import environment
from runbook.gate.sandbox.isolation import SCRATCH_BYTES, SEARCH_PATH, confine, probe_isolation, python_paths
from runbook.gate.sandbox.processes import killpg

__all__ = ["EnvCredentials", "GateError", "RunResult", "Sandbox", "SandboxWarning", "probe_isolation"]

REPO_ROOT = Path(__file__).resolve().parents[3]

#: Where the worker's own files (shims, fork server, logs) are, inside the sandbox.
STATE = Path("/run/runbook")


class SandboxWarning(UserWarning):
    """The sandbox runs with fewer layers of isolation than it would like."""


@dataclass(frozen=True)
class EnvCredentials:
    env: str
    account: str
    region: str
    access_key_id: str
    secret_access_key: str


@dataclass
class RunResult:
    rc: int  # 124 when the run was stopped by its timeout
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool
    over_limit: bool = False  # stopped for writing more than capture.OUTPUT_LIMIT
    settled: bool = False  # a stream stopped once it had printed and gone quiet (capture.collect)


class Sandbox:
    """One moto server and the snippets run against it; a context manager."""

    def __init__(
        self,
        aws_cli: str,
        *,
        allow_no_netns: bool = False,
        workdir: Path | None = None,
        python_path: Sequence[str | os.PathLike[str]] = (),
        readable: Sequence[str | os.PathLike[str]] = (),
        fast_cli: bool = True,
    ) -> None:
        """``aws_cli``: the CLI v2 executable (``RUNBOOK_AWS_CLI``, e.g. /usr/bin/aws).

        ``workdir``: where the sandbox keeps its files (a fresh temporary directory, removed
        on close, if not given). ``python_path``: extra import roots for :meth:`call` targets
        (the repository root is always there). ``readable``: files the worker reads that the
        sandbox hides (the data a :meth:`call` seeds from). ``fast_cli``: run snippets' ``aws`` through the
        CLI fork server (``False``: the real CLI is started for every call).
        """
        self.aws_cli = os.path.abspath(aws_cli)
        self.fast_cli = fast_cli
        self.allow_no_netns = allow_no_netns
        self.python_path = [os.path.abspath(p) for p in python_path]
        self.readable = [Path(os.path.abspath(p)) for p in readable]
        self._given_workdir = Path(workdir) if workdir is not None else None
        self.workdir: Path | None = None
        self.endpoint_url = ""
        self.isolation = ""  # "full" | "none", after start()
        self.start_seconds = 0.0
        self._credentials: dict[str, EnvCredentials] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        self._channel: JsonLinesClient | None = None
        self._log: IO[bytes] | None = None
        self._next_id = 0
        self._lock = threading.RLock()
        self._finalizer: weakref.finalize[Any, Sandbox] | None = None
        self._killed = False
        self._started = 0.0
        self._init: dict[str, Any] = {}  # the init request a launched worker is sent

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> Sandbox:
        if self._proc is None:  # `with Sandbox(...)` starts it; a started one is used as is
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Start the worker (unless :meth:`launch` did) and wait until it serves."""
        with self._lock:
            if self._proc is None:
                self._launch()
            elif self.endpoint_url:
                raise GateError("sandbox already started")
            self._initialise()

    def launch(self) -> None:
        """Start the worker's process without waiting for it (:meth:`start` waits): whatever
        else starts meanwhile starts beside it. The thread that launches a sandbox is the one
        whose end ends it (bubblewrap's --die-with-parent)."""
        with self._lock:
            if self._proc is not None:
                raise GateError("sandbox already started")
            self._launch()

    def _launch(self) -> None:
        self._started = time.monotonic()
        if not (os.path.isfile(self.aws_cli) and os.access(self.aws_cli, os.X_OK)):
            raise GateError(f"AWS CLI not found or not executable: {self.aws_cli}")
        level = probe_isolation()
        if level == "none":
            if not self.allow_no_netns:
                raise GateError(
                    "cannot start a bubblewrap sandbox here (bwrap missing, or user "
                    "namespaces not permitted): refusing to run runbook snippets outside "
                    "one. Install bubblewrap (make test does) and allow unprivileged user "
                    "namespaces (kernel.unprivileged_userns_clone=1, or a container "
                    "seccomp profile that permits them), or pass allow_no_netns=True in "
                    "tests of the other defences."
                )
            warnings.warn("sandbox WITHOUT any isolation (allow_no_netns=True)",
                          SandboxWarning, stacklevel=2)
        self.isolation = level

        if self._given_workdir is not None:
            self.workdir = self._given_workdir
            self.workdir.mkdir(parents=True, exist_ok=True)
            owned = False
        else:
            self.workdir = Path(tempfile.mkdtemp(prefix="runbook-sandbox-"))
            owned = True
        workdir = self.workdir = self.workdir.resolve()
        confined = level == "full"
        state = STATE if confined else workdir  # the worker's view of workdir
        for sub in ("worker-home", "worker-tmp"):
            (workdir / sub).mkdir(exist_ok=True)

        python = sys.executable
        env = {
            **environment.base(SEARCH_PATH, str(state / "worker-home")),
            "TMPDIR": str(state / "worker-tmp"),
            "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), *self.python_path]),
            "PYTHONDONTWRITEBYTECODE": "1",
            # For boto3 clients made by call() targets: moto's keys, never the host's.
            **environment.MOTO_TEST_CREDENTIALS,
            **environment.NO_CONFIG_FILES,
            **environment.LOOPBACK_NO_PROXY,
        }
        argv = [python, "-m", "runbook.gate.sandbox.worker"]
        if confined:
            argv = confine(argv, readable=[*python_paths(self.python_path), *self.readable],
                           binds=[(workdir, STATE)], tmp_size=SCRATCH_BYTES)

        log = self._log = open(workdir / "worker.log", "ab")  # noqa: SIM115
        try:
            proc = self._proc = subprocess.Popen(
                argv, env=env, cwd=str(workdir), stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=log, start_new_session=True,
            )
        except OSError as exc:
            log.close()
            raise GateError(f"cannot start the sandbox worker: {exc}") from exc
        if self._killed:  # kill() came while we were starting
            killpg(proc.pid, signal.SIGKILL)
        self._channel = JsonLinesClient(proc)
        self._finalizer = weakref.finalize(
            self, _cleanup, proc, log, workdir if owned else None
        )
        self._init = {"op": "init", "base": str(state), "aws_cli": self.aws_cli, "confined": confined,
                      "fast_cli": self.fast_cli, "scratch": "/tmp" if confined else str(workdir / "scratch")}

    def _initialise(self) -> None:
        try:
            info = self._request(self._init, timeout=60)
        except GateError:
            self.close()
            raise
        self.endpoint_url = info["endpoint_url"]
        self.start_seconds = time.monotonic() - self._started

    def close(self) -> None:
        with self._lock:
            proc = self._proc
            if proc is None:
                return
            if proc.poll() is None:
                try:
                    self._request({"op": "shutdown"}, timeout=5)
                except GateError:
                    pass
            if self._finalizer is not None:
                self._finalizer()  # waits, kills if needed, removes an owned workdir
            self._proc = self._channel = None
            self._credentials.clear()

    def kill(self) -> None:
        """Stop the worker and everything it runs, at once and from any thread.

        Takes no lock (a request in flight holds it): the worker's process group is killed,
        which in a PID namespace takes every snippet along; the request in flight then fails
        with a GateError, and :meth:`close` still has to be called to remove the workdir.
        """
        self._killed = True
        proc = self._proc
        if proc is not None and proc.returncode is None:
            killpg(proc.pid, signal.SIGKILL)  # start_new_session: the group is the worker's pid

    # -- operations ------------------------------------------------------------------------

    def reset(self) -> None:
        """Wipe moto's state (every account), a kept world's included, and forget every
        environment's credentials.

        Keys issued by moto's IAM vanish with the reset; a key used afterwards would silently
        land in moto's default account, so they are forgotten: re-register them after seeding.
        """
        self._request({"op": "reset"})
        self._credentials.clear()

    def freeze(self) -> None:
        """Keep the world as it is now: :meth:`restore` brings it back, at a cost that does not
        grow with it (a fork of the moto host). Credentials stay registered."""
        self._request({"op": "freeze"})

    def restore(self) -> None:
        """Back to the world as :meth:`freeze` kept it; every change since is gone."""
        self._request({"op": "restore"})

    def thaw(self) -> None:
        """Back to the kept world, and stop keeping it: what is seeded next adds to it
        (:meth:`freeze` again to keep the new one)."""
        self._request({"op": "thaw"})

    def call(self, target: str, **kwargs: Any) -> Any:
        """Run ``module:function(endpoint_url=..., **kwargs)`` inside the worker.

        kwargs and the return value travel as JSON. The function is imported in the worker
        (repository root and ``python_path`` are importable there) and may use boto3 freely;
        the worker's default credentials are moto's dummy ones.
        """
        try:
            json.dumps(kwargs)
        except TypeError as exc:
            raise GateError(f"call({target!r}): arguments are not JSON-serialisable: {exc}") from exc
        return self._request({"op": "call", "target": target, "kwargs": kwargs}, timeout=300)

    def set_credentials(self, creds: EnvCredentials) -> None:
        """Register the moto credentials that snippets of ``creds.env`` run with.

        Checked on the spot with ``sts get-caller-identity``: the key must belong to
        ``creds.account`` in moto (an unknown key would fall into moto's default account).
        """
        ident = self._request({"op": "check_credentials", "creds": asdict(creds)})
        if ident["account"] != creds.account:
            raise GateError(
                f"credentials for env {creds.env!r} resolve to moto account {ident['account']} "
                f"({ident['arn']}), not {creds.account}: create the access key with moto's IAM "
                "inside that account"
            )
        self._credentials[creds.env] = creds

    def run(self, lang: str, code: str, env: str, *, timeout: float = 30.0,
            stream: bool = False) -> RunResult:
        """Run one snippet (``lang`` "bash" or "python") with ``env``'s credentials.

        ``stream``: the command is not expected to end (``aws logs tail --follow``); it is
        stopped once it has printed and gone quiet (``settled``), else at ``timeout``, and
        judged by what it printed (:func:`runbook.gate.verdict.judge`). Stopping kills the run's PID namespace and the
        commands the fork server runs for it; the result then has ``timed_out=True`` and
        ``rc=124``.
        """
        if lang not in ("bash", "zsh", "python"):
            raise GateError(f"cannot run a {lang!r} snippet (bash, zsh or python)")
        if lang == "zsh" and not os.path.exists("/usr/bin/zsh"):
            raise GateError("zsh is not installed: the gate runs every shell block under it too, "
                            "macOS's shell (Debian: apt-get install zsh; make test installs it)")
        creds = self._credentials.get(env)
        if creds is None:
            known = ", ".join(sorted(self._credentials)) or "none"
            raise GateError(
                f"no credentials registered for env {env!r} (registered: {known}); call "
                "set_credentials() after seeding, and again after reset()"
            )
        reply = self._request(
            {"op": "run", "lang": lang, "code": code, "creds": asdict(creds),
             "timeout": timeout, "stream": stream},
            timeout=timeout + 30,
        )
        return RunResult(**reply)

    def exec_bare(self, argv: Sequence[str], env: str, *, timeout: float = 30.0) -> RunResult:
        """Run ``argv`` inside the sandbox with only ``env``'s credentials: no shell, no
        prelude, no shims, so nothing forces the endpoint. For benchmarks and diagnostics."""
        creds = self._credentials.get(env)
        if creds is None:
            raise GateError(f"no credentials registered for env {env!r}")
        reply = self._request(
            {"op": "exec_bare", "argv": list(argv), "creds": asdict(creds), "timeout": timeout},
            timeout=timeout + 30,
        )
        return RunResult(**reply)

    def zygote_info(self, *, wait: bool = False) -> dict[str, Any]:
        """The CLI fork server's state (pid, children, requests served...), for tests and
        diagnostics. ``wait``: first wait for it to be ready, as a run would."""
        info: dict[str, Any] = self._request({"op": "zygote_info", "wait": wait}, timeout=60)
        return info

    @property
    def credentials(self) -> dict[str, EnvCredentials]:
        return dict(self._credentials)

    # -- protocol --------------------------------------------------------------------------

    def _request(self, message: dict[str, Any], timeout: float = 120.0) -> Any:
        with self._lock:
            proc, channel = self._proc, self._channel
            if proc is None or channel is None:
                raise GateError("sandbox is not started")
            self._next_id += 1
            message = {"id": self._next_id, **message}
            try:
                channel.send(message)
            except OSError as exc:
                raise GateError(f"sandbox worker is gone: {exc}{self._log_tail()}") from exc
            line = self._read_line(proc, channel, timeout, message["op"])
            try:
                reply = json.loads(line)
            except json.JSONDecodeError as exc:
                raise GateError(f"sandbox worker said something that is not JSON: {line[:200]!r}") from exc
            if reply.get("id") != message["id"]:
                raise GateError(f"sandbox worker answered request {reply.get('id')}, "
                                f"expected {message['id']}")
            if not reply.get("ok"):
                raise GateError(f"sandbox {message['op']} failed: {reply.get('error')}\n"
                                f"{reply.get('traceback', '')}")
            return reply.get("result")

    def _read_line(self, proc: subprocess.Popen[bytes], channel: JsonLinesClient, timeout: float,
                   op: str) -> str:
        try:
            return channel.read_line(timeout)
        except NoAnswer:
            self._kill()
            raise GateError(f"sandbox worker did not answer {op!r} within {timeout:.0f}s "
                            f"(worker killed){self._log_tail()}") from None
        except ChildExited:
            proc.wait(timeout=5)
            raise GateError(f"sandbox worker exited (status {proc.returncode}) during "
                            f"{op!r}{self._log_tail()}") from None

    def _kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()

    def _log_tail(self, lines: int = 20) -> str:
        if self.workdir is None:
            return ""
        try:
            text = (self.workdir / "worker.log").read_text(errors="replace")
        except OSError:
            return ""
        tail = "\n".join(text.strip().splitlines()[-lines:])
        return f"\n--- worker log (last lines) ---\n{tail}" if tail else ""


def _cleanup(proc: subprocess.Popen[bytes], log: IO[bytes], owned_workdir: Path | None) -> None:
    for stream in (proc.stdin, proc.stdout):
        try:
            if stream is not None:
                stream.close()
        except OSError:
            pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        # The whole group: bubblewrap, whose sandbox (--die-with-parent) ends with it.
        killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    log.close()
    if owned_workdir is not None:
        shutil.rmtree(owned_workdir, ignore_errors=True)
