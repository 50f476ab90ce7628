"""The process that lives inside the sandbox: it owns the moto server and runs snippets.

Started by :class:`runbook.gate.sandbox.sandbox.Sandbox` as ``python -m
runbook.gate.sandbox.worker`` inside a bubblewrap sandbox (:func:`isolation.confine`: loopback
only, host read-only, no home or project). Each snippet is one limited run inside it
(:func:`isolation.limited`), whose HOME, working directory and TMPDIR are in the scratch (the
sandbox's private /tmp), emptied after every run. It talks to the parent over stdin/stdout, one JSON
object per line (:mod:`runbook.gate.jsonlines` on the parent's side); every other byte it or
its libraries print goes to stderr (the parent sends that to a log file).

Requests: ``{"id": n, "op": ..., ...}``; replies: ``{"id": n, "ok": true, "result": ...}``
or ``{"id": n, "ok": false, "error": "...", "traceback": "..."}``.

Ops: ``init``, ``reset``, ``call``, ``freeze``, ``restore``, ``thaw``, ``check_credentials``,
``run``, ``exec_bare``, ``zygote_info``, ``shutdown``. moto itself, and every ``call``, run in
the moto host (:mod:`runbook.gate.sandbox.moto_host`), which keeps a frozen world to restore.
See the parent for their meaning; this module trusts its parent.

With ``fast_cli`` (the default) the worker also runs a fork server for the real CLI v2
(:mod:`runbook.gate.forkserver.supervisor`), and snippets' ``aws`` is its client, which hands
each command to it (or runs the real CLI when it cannot). The fork server holds no AWS state:
it survives ``reset`` and is restarted when it dies.
"""

from __future__ import annotations

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runbook.data.model import MAX_TIMEOUT
from runbook.gate.forkserver.supervisor import ForkServer
from runbook.gate.jsonlines import ChildExited, JsonLinesClient
from runbook.gate.sandbox import environment
from runbook.gate.sandbox.capture import collect
from runbook.gate.sandbox.isolation import limited
from runbook.gate.sandbox.processes import killpg, not_dumpable
from runbook.gate.sandbox.shims import write_aws_shims, write_sitecustomize

MOTO_START = 60.0  # seconds for the moto host to listen
HOST_TIMEOUT = 600.0  # a call the host does not answer: the parent has given up long before
HOST_OPS = frozenset({"reset", "call", "freeze", "restore", "thaw"})  # answered by the moto host


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
        self.moto: JsonLinesClient | None = None  # the moto host (runbook.gate.sandbox.moto_host)
        self.endpoint_url = ""
        self._layout: Layout | None = None
        self.aws_cli = ""
        self.confined = False  # each run in its own limited bubblewrap (isolation.limited)
        self.scratch = Path("/tmp")  # every run's HOME, working directory and TMPDIR
        self.scratch_mounts: set[str] = set()  # names in it that are or hold a mount: kept
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
        base = Path(req["base"])
        self.aws_cli = req["aws_cli"]
        self.confined = bool(req["confined"])
        self.scratch = Path(req["scratch"])
        self.scratch.mkdir(exist_ok=True)
        self.scratch_mounts = _holding_mounts(self.scratch)  # the sandbox's: fixed from here on
        started = time.monotonic()
        # moto lives in a process of its own, whose seeded world a fork keeps (freeze/restore).
        host = subprocess.Popen([sys.executable, "-m", "runbook.gate.sandbox.moto_host"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.moto = JsonLinesClient(host)
        port = json.loads(self.moto.read_line(MOTO_START))["port"]
        self.endpoint_url = f"http://127.0.0.1:{port}"
        layout = self._layout = self._write_shims(base)
        if req.get("fast_cli", True):
            self.forkserver = ForkServer(base, self.aws_cli, self.endpoint_url, layout.shim_py)
            if self.forkserver.enabled:
                self.forkserver.start()  # warms up while the caller seeds; a run waits for it
        self._seal_shims()
        return {
            "endpoint_url": self.endpoint_url,
            "pid": os.getpid(),
            "confined": self.confined,
            "moto_seconds": time.monotonic() - started,
            "fast_cli": self.fast_cli,
        }

    def host(self, req: dict[str, Any]) -> Any:
        """An op the moto host answers: its reply's result, or its error raised here."""
        if self.moto is None:
            raise RuntimeError("the worker is not initialised (no init op yet)")
        self.moto.send(req)
        try:
            reply = json.loads(self.moto.read_line(HOST_TIMEOUT))
        except ChildExited:
            raise RuntimeError("the moto host exited") from None
        if not reply["ok"]:
            raise RuntimeError(f"{reply['error']}\n{reply.get('traceback', '')}")
        return reply["result"]


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
        if lang == "bash":
            name, argv = "snippet.sh", ["/bin/bash", "--noprofile", "--norc", "-e", "-u", "-o",
                                        "pipefail"]
        elif lang == "zsh":  # macOS's shell, as an engineer pastes into it: no rc files
            name, argv = "snippet.zsh", ["/usr/bin/zsh", "-f", "-o", "errexit", "-o", "nounset",
                                         "-o", "pipefail"]
        elif lang == "python":
            name, argv = "snippet.py", [sys.executable, "-u"]
        else:
            raise ValueError(f"unknown snippet language {lang!r} (bash or python)")
        fast = self.forkserver is not None and self.forkserver.usable()
        # The script lies outside the scratch, where the run cannot change it.
        scripts = Path(tempfile.mkdtemp(prefix="run-", dir=self.layout.runs))
        try:
            script = scripts / name
            script.write_text(req["code"])
            home, cwd = self._fresh_scratch()
            env = self._snippet_env(req["creds"], home, fast=fast)
            timeout = min(float(req["timeout"]), MAX_TIMEOUT)  # whatever the caller asks
            return self._execute([*argv, str(script)], env, cwd, timeout, stream=bool(req.get("stream")))
        finally:
            shutil.rmtree(scripts, ignore_errors=True)
            _empty(self.scratch, self.scratch_mounts)

    def op_exec_bare(self, req: dict[str, Any]) -> dict[str, Any]:
        """Run argv with only credentials and region: no shims, no prelude (benchmarks)."""
        creds = req["creds"]
        try:
            home, cwd = self._fresh_scratch()
            env = {
                **environment.base("/usr/bin:/bin", str(home)),
                **environment.credentials(creds["access_key_id"], creds["secret_access_key"],
                                          creds["region"]),
                **environment.NO_CONFIG_FILES,
                **environment.NO_PAGER,
            }
            return self._execute(list(req["argv"]), env, cwd,
                                 min(float(req["timeout"]), MAX_TIMEOUT))
        finally:
            _empty(self.scratch, self.scratch_mounts)

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
        if self.moto is not None:
            self.moto.proc.kill()
            self.moto.proc.wait()

    # -- helpers ---------------------------------------------------------------------------

    def _write_shims(self, base: Path) -> Layout:
        shims = base / "shims"
        layout = Layout(base=base, runs=base / "runs", shim_bin=shims / "bin",
                        shim_py=shims / "python", prelude=shims / "prelude.sh")
        for d in (layout.shim_bin, layout.shim_py, layout.runs):
            d.mkdir(parents=True, exist_ok=True)
        write_aws_shims(shims, self.aws_cli, self.endpoint_url)
        write_sitecustomize(layout.shim_py, self.endpoint_url)
        return layout

    def _seal_shims(self) -> None:
        """The shims decide where ``aws`` goes: read-only from here on, also to the commands
        the fork server runs for a snippet (outside its run's read-only view)."""
        for root, _dirs, files in os.walk(self.layout.base / "shims"):
            for name in files:
                if not os.path.islink(os.path.join(root, name)):
                    os.chmod(os.path.join(root, name), 0o555)
            os.chmod(root, 0o555)

    def _fresh_scratch(self) -> tuple[Path, Path]:
        """An empty scratch with a HOME and a working directory in it."""
        _empty(self.scratch, self.scratch_mounts)
        home, cwd = self.scratch / "home", self.scratch / "work"
        home.mkdir()
        cwd.mkdir()
        return home, cwd

    def _snippet_env(self, creds: dict[str, str], home: Path, *,
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
            **environment.snippet_base(":".join(path), str(home), str(self.scratch),
                                     str(layout.shim_py)),
            "BASH_ENV": str(prelude),
            "RUNBOOK_AWS": aws,
            **fast_vars,
            **environment.credentials(creds["access_key_id"], creds["secret_access_key"], region),
            "AWS_REGION": region,
            "AWS_CONFIG_FILE": str(config),
            "AWS_SHARED_CREDENTIALS_FILE": str(credentials),
            "AWS_ENDPOINT_URL": self.endpoint_url,
        }

    def _execute(self, argv: list[str], env: dict[str, str], cwd: Path,
                 timeout: float, stream: bool = False) -> dict[str, Any]:
        """Run ``argv`` as one limited run (:func:`isolation.limited`): its own user and PID
        namespaces, nothing writable but the scratch, hard limits; its output capped."""
        if self.confined:
            argv = limited(argv, writable=[self.scratch], cwd=cwd)
        started = time.monotonic()
        proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, start_new_session=True, close_fds=True,
        )

        def stop() -> None:
            # The run's PID namespace ends with bubblewrap, every process it left included;
            # the commands the fork server still runs for it are the fork server's children.
            killpg(proc.pid, signal.SIGKILL)
            if self.forkserver is not None:
                self.forkserver.kill_children()

        out = collect(proc, timeout, stop, stream)
        return {
            "rc": out.rc,
            "stdout": out.stdout,
            "stderr": out.stderr,
            "seconds": time.monotonic() - started,
            "timed_out": out.timed_out,
            "over_limit": out.over_limit,
            "settled": out.settled,
        }


def _empty(directory: Path, mounted: set[str]) -> None:
    """Remove everything in ``directory``, even what a run made unreadable (it is ours), but
    not the names in ``mounted``: the sandbox's own mounts (the project's code, when under /tmp)."""
    for entry in os.scandir(directory):
        if entry.name in mounted:
            continue
        if not entry.is_dir(follow_symlinks=False):
            os.unlink(entry.path)
            continue
        for root, dirs, _files in os.walk(entry.path):
            os.chmod(root, 0o700)
            for name in dirs:
                path = os.path.join(root, name)
                if not os.path.islink(path):
                    os.chmod(path, 0o700)  # before os.walk goes in
        shutil.rmtree(entry.path)


def _holding_mounts(directory: Path) -> set[str]:
    """Names in ``directory`` that are or hold a mount point."""
    prefix = str(directory).rstrip("/") + "/"
    names = set()
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as mountinfo:
        for line in mountinfo:
            point = line.split()[4].replace("\\040", " ")
            if point.startswith(prefix):
                names.add(point[len(prefix):].split("/", 1)[0])
    return names


def main() -> int:
    not_dumpable()
    # stdout belongs to the protocol: keep a private copy and point fd 1 at stderr, so that
    # nothing moto, werkzeug or a seeding function prints can corrupt a reply.
    proto = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)

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
            handler = worker.host if op in HOST_OPS else getattr(worker, f"op_{op}", None)
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
