"""A sandbox that runs runbook snippets for real, against moto, and nowhere else.

A runbook command is copied from a web page into a shell that holds prod credentials; the
verification gate must never be that shell. One :class:`Sandbox` is one worker process
(:mod:`runbook.gate.sandbox.worker`) that holds a moto server and runs every snippet as its own
child. The defences, outermost first:

* **Kernel network isolation.** The worker starts in a new user + network namespace
  (``unshare -rn``) where only loopback exists: a request to anything but the local moto
  server fails at ``connect()``, whatever the snippet does. Without permission for that,
  :meth:`Sandbox.start` raises :class:`GateError` unless ``allow_no_netns=True`` (only for
  tests of the other defences).
* **PID and mount namespaces, where the kernel allows them.** The worker is PID 1 of a PID
  namespace with a fresh ``/proc``: a snippet cannot read ``/proc/<caller>/environ`` (which
  holds the caller's real credentials), and every process a snippet leaves behind is killed
  after it. Well-known credential locations of the host (``~/.aws``, ``~/.ssh``, the files
  named by ``AWS_CONFIG_FILE``, ``AWS_WEB_IDENTITY_TOKEN_FILE`` ...) are covered by empty,
  unreadable mounts, and the worker drops every capability (``setpriv --bounding-set=-all
  --no-new-privs``) so that no snippet can undo those mounts. If only ``unshare -rn`` is
  permitted the sandbox still starts, with a :class:`SandboxWarning`; ``isolation`` says which.
* **An environment built from nothing** for the worker and for every snippet: no variable of
  the caller (``AWS_PROFILE``, keys, ``AWS_ROLE_ARN``, ``AWS_CONTAINER_CREDENTIALS_*``,
  proxies ...) reaches them. Each snippet gets a fresh ``HOME`` whose ``~/.aws`` holds only the
  moto credentials of its environment, a fresh working directory and ``TMPDIR``.
* **The endpoint is forced, not suggested.** ``aws`` is a bash function (exported, and sourced
  through ``BASH_ENV`` into every child bash) and an executable on ``PATH`` that both add
  ``--endpoint-url``; a ``sitecustomize`` on ``PYTHONPATH`` makes every botocore client (boto3 in
  a Python snippet, and the CLI v2's vendored botocore) use the moto endpoint.

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

import glob
import json
import os
import pwd
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
from runbook.gate.sandbox.isolation import SEARCH_PATH, probe_isolation
from runbook.gate.sandbox.processes import killpg

__all__ = ["EnvCredentials", "GateError", "RunResult", "Sandbox", "SandboxWarning", "probe_isolation"]

REPO_ROOT = Path(__file__).resolve().parents[3]

# Credential and secret locations hidden from snippets (relative to each home directory).
_HIDDEN_IN_HOME = (
    ".aws", ".ssh", ".netrc", ".docker", ".kube", ".azure", ".gnupg", ".git-credentials",
    ".boto", ".s3cfg", ".pgpass", ".config/gcloud", ".config/gh", ".config/hub",
)
# Environment variables of the caller that may name credential files.
_CREDENTIAL_FILE_VARS = (
    "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "BOTO_CONFIG", "KUBECONFIG",
    "GOOGLE_APPLICATION_CREDENTIALS",
)

# Runs as PID 1's shell inside the namespaces, before the worker: loopback up, credential
# locations covered, every capability dropped for good, then the worker.
_NS_SETUP = r"""
set -e
ip link set lo up
hide=1
for p in "$@"; do
  if [ "$p" = -- ]; then hide=0; continue; fi
  if [ "$hide" = 1 ]; then
    if [ -d "$p" ]; then mount -t tmpfs -o size=4k,mode=000 runbook-hidden "$p"
    elif [ -e "$p" ]; then mount --bind /dev/null "$p"
    fi
  fi
done
exec setpriv --bounding-set=-all --inh-caps=-all --no-new-privs -- "$PYTHON" -m runbook.gate.sandbox.worker
"""
_NETNS_SETUP = 'ip link set lo up && exec "$PYTHON" -m runbook.gate.sandbox.worker'


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


def _hidden_paths(keep: Sequence[Path]) -> list[str]:
    """Credential locations of the host to cover, minus anything the sandbox itself needs."""
    homes = {os.environ.get("HOME", ""), "/root", *glob.glob("/home/*")}
    try:
        homes.add(pwd.getpwuid(os.getuid()).pw_dir)
    except KeyError:
        pass
    candidates = [os.path.join(h, rel) for h in homes if h for rel in _HIDDEN_IN_HOME]
    for var in _CREDENTIAL_FILE_VARS:
        candidates += [p for p in os.environ.get(var, "").split(os.pathsep) if p]
    keep_real = [os.path.realpath(k) for k in keep]
    hidden = set()
    for c in candidates:
        real = os.path.realpath(c)
        if not os.path.lexists(real) or real in ("/", "/dev/null"):
            continue
        # Never cover something the sandbox needs (or a directory holding it).
        if any(k == real or k.startswith(real.rstrip("/") + "/") for k in keep_real):
            continue
        hidden.add(real)
    return sorted(hidden)


class Sandbox:
    """One moto server and the snippets run against it; a context manager."""

    def __init__(
        self,
        aws_cli: str,
        *,
        allow_no_netns: bool = False,
        workdir: Path | None = None,
        python_path: Sequence[str | os.PathLike[str]] = (),
        keep_runs: bool = False,
        fast_cli: bool = True,
    ) -> None:
        """``aws_cli``: the CLI v2 executable (``RUNBOOK_AWS_CLI``, e.g. /usr/bin/aws).

        ``workdir``: where the sandbox keeps its files (a fresh temporary directory, removed
        on close, if not given). ``python_path``: extra import roots for :meth:`call` targets
        (the repository root is always there). ``keep_runs``: keep each run's directory
        under ``workdir/runs`` for debugging. ``fast_cli``: run snippets' ``aws`` through the
        CLI fork server (``False``: the real CLI is started for every call).
        """
        self.aws_cli = os.path.abspath(aws_cli)
        self.fast_cli = fast_cli
        self.allow_no_netns = allow_no_netns
        self.python_path = [os.path.abspath(p) for p in python_path]
        self.keep_runs = keep_runs
        self._given_workdir = Path(workdir) if workdir is not None else None
        self.workdir: Path | None = None
        self.endpoint_url = ""
        self.isolation = ""  # "full" | "netns" | "none", after start()
        self.start_seconds = 0.0
        self._credentials: dict[str, EnvCredentials] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        self._channel: JsonLinesClient | None = None
        self._log: IO[bytes] | None = None
        self._next_id = 0
        self._lock = threading.RLock()
        self._finalizer: weakref.finalize[Any, Sandbox] | None = None
        self._killed = False

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> Sandbox:
        if self._proc is None:  # `with Sandbox(...)` starts it; a started one is used as is
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        with self._lock:
            if self._proc is not None:
                raise GateError("sandbox already started")
            started = time.monotonic()
            if not (os.path.isfile(self.aws_cli) and os.access(self.aws_cli, os.X_OK)):
                raise GateError(f"AWS CLI not found or not executable: {self.aws_cli}")
            level = probe_isolation()
            if level == "none":
                if not self.allow_no_netns:
                    raise GateError(
                        "cannot create a network namespace (`unshare -rn` is not permitted "
                        "here): refusing to run runbook snippets without network isolation. "
                        "Allow unprivileged user namespaces (kernel.unprivileged_userns_clone=1, "
                        "or run the container with --privileged / a seccomp profile that permits "
                        "unshare), or pass allow_no_netns=True in tests of the other defences."
                    )
                warnings.warn("sandbox WITHOUT network isolation (allow_no_netns=True)",
                              SandboxWarning, stacklevel=2)
            elif level == "netns":
                warnings.warn(
                    "sandbox with a network namespace only: no PID/mount namespace here, so "
                    "snippets can see host processes and the host's credential files",
                    SandboxWarning, stacklevel=2,
                )
            self.isolation = level

            if self._given_workdir is not None:
                self.workdir = self._given_workdir
                self.workdir.mkdir(parents=True, exist_ok=True)
                owned = False
            else:
                self.workdir = Path(tempfile.mkdtemp(prefix="runbook-sandbox-"))
                owned = True
            workdir = self.workdir = self.workdir.resolve()
            worker_home = workdir / "worker-home"
            worker_tmp = workdir / "worker-tmp"
            worker_home.mkdir(exist_ok=True)
            worker_tmp.mkdir(exist_ok=True)

            python = sys.executable
            env = {
                **environment.base(SEARCH_PATH, str(worker_home)),
                "TMPDIR": str(worker_tmp),
                "PYTHON": python,
                "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), *self.python_path]),
                "PYTHONDONTWRITEBYTECODE": "1",
                # For boto3 clients made by call() targets: moto's keys, never the host's.
                **environment.MOTO_TEST_CREDENTIALS,
                **environment.NO_CONFIG_FILES,
                **environment.LOOPBACK_NO_PROXY,
            }
            if level == "full":
                keep = [Path(python), Path(self.aws_cli), REPO_ROOT, workdir,
                        *map(Path, self.python_path)]
                argv = ["unshare", "-rnm", "--pid", "--fork", "--mount-proc", "--kill-child",
                        "bash", "--noprofile", "--norc", "-c", _NS_SETUP, "runbook-sandbox",
                        *_hidden_paths(keep), "--"]
            elif level == "netns":
                argv = ["unshare", "-rn", "bash", "--noprofile", "--norc", "-c", _NETNS_SETUP]
            else:
                argv = [python, "-m", "runbook.gate.sandbox.worker"]

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
            try:
                info = self._request(
                    {"op": "init", "base": str(self.workdir), "aws_cli": self.aws_cli,
                     "pid_namespace": level == "full", "keep_runs": self.keep_runs,
                     "fast_cli": self.fast_cli},
                    timeout=60,
                )
            except GateError:
                self.close()
                raise
            self.endpoint_url = info["endpoint_url"]
            self.start_seconds = time.monotonic() - started

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
        """Wipe moto's state (every account) and forget every environment's credentials.

        Keys issued by moto's IAM vanish with the reset; a key used afterwards would silently
        land in moto's default account, so they are forgotten: re-register them after seeding.
        """
        self._request({"op": "reset"})
        self._credentials.clear()

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
        stopped at ``timeout`` like any other, and judged by what it printed
        (:func:`runbook.execute.judge`). Stopping sends SIGTERM to the snippet's process group,
        then SIGKILL 0.25 s later; the result then has ``timed_out=True`` and ``rc=124``. An
        ``aws`` command run by the fork server gets the SIGTERM through its client, and is
        stopped by the fork server when its client dies.
        """
        if lang not in ("bash", "python"):
            raise GateError(f"cannot run a {lang!r} snippet (bash or python)")
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
        # The whole group (unshare, and the worker without a PID namespace); with one,
        # `unshare --kill-child` takes the worker (PID 1) and its namespace along.
        killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    log.close()
    if owned_workdir is not None:
        shutil.rmtree(owned_workdir, ignore_errors=True)
