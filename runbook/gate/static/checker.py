"""Static tier of the verification gate: check runbook code blocks without AWS.

No network, no credentials, no AWS account: a shell block is syntax-checked (``bash -n``,
optionally ``shellcheck -S error``), scanned for unresolved placeholders and for options only
GNU (or only BSD/macOS) tools take (:mod:`runbook.data.portable`), then *expanded*
by real bash in a sandbox where ``aws`` is a function that records its exact argv
(:mod:`.shell`). Each ``aws`` argv is validated by the AWS CLI v2 itself (:mod:`.cli` finds
it), in a persistent worker process (``awscli/worker.py``) running under the CLI's own
interpreter, with botocore answering every request from a stub. The API parameters that
botocore accepted are then checked against the constraints botocore does not enforce
client-side (:mod:`.constraints`).

Python blocks are compiled, and ``boto3.client("svc")`` calls are checked against the
service models (:mod:`.python`).

``StaticChecker`` is thread-safe: requests to the worker are serialised by a lock; shell
expansions run in their own temporary directories.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runbook.data import placeholders
from runbook.errors import GateError
from runbook.gate.jsonlines import ChildExited, JsonLinesClient, NoAnswer
from runbook.gate.sandbox.isolation import confine
from runbook.gate.static import shell, userland
from runbook.gate.static.cli import cli_interpreter, find_aws_cli_v2, scratch_env
from runbook.gate.static.constraints import check_api_params, cli_option
from runbook.gate.static.python import check_python_code

__all__ = ["AwsCall", "StaticChecker", "StaticProblem", "find_placeholders"]

WORKER_SCRIPT = Path(__file__).resolve().parent / "awscli" / "worker.py"
HANDLER_MEMO = Path(__file__).resolve().parent.parent / "forkserver" / "cli" / "handler_memo.py"
WORKER_TIMEOUT = 30.0  # seconds for one aws command in the worker
WORKER_START_TIMEOUT = 60.0


@dataclass(frozen=True)
class StaticProblem:
    line: int  # 1-based line within the block
    message: str  # e.g. "aws dynamodb get-item: the following arguments are required: --table-name"


@dataclass(frozen=True)
class AwsCall:
    line: int
    argv: tuple[str, ...]  # without the leading "aws"
    service: str | None
    operation: str | None  # API operation name, e.g. "FilterLogEvents", when known


def find_placeholders(code: str) -> list[StaticProblem]:
    """Unresolved placeholders, template expressions and operator inputs of a block."""
    return _problems(shell.find_placeholders(code))


def _problems(findings: list[shell.Finding]) -> list[StaticProblem]:
    return [StaticProblem(line, message) for line, message in findings]


# --------------------------------------------------------------------------------------
# The worker
# --------------------------------------------------------------------------------------
class _Worker:
    def __init__(self, interpreter: str, home: str, cli: str):
        self.interpreter = interpreter
        self.home = home
        self.cli = cli
        self.proc: subprocess.Popen[bytes] | None = None
        self._channel: JsonLinesClient | None = None
        self.info: dict[str, Any] = {}
        self.killed = False  # by stop(), from another thread: no (re)start may outlive it

    def start(self) -> None:
        self.launch()
        self.wait_ready()

    def launch(self) -> None:
        """Start the process (it dies with the thread that starts it: bubblewrap's
        --die-with-parent); `wait_ready` waits for it."""
        # Its folder holds nothing but this script; the CLI's own files and the memo it loads
        # stay readable.
        cli_dir = Path(os.path.realpath(self.cli)).parent
        # The blocks' folders beside home hold the files a command names (file://...).
        argv = confine([self.interpreter, "-I", str(WORKER_SCRIPT), str(HANDLER_MEMO)],
                       writable=[Path(self.home).parent], readable=[WORKER_SCRIPT.parent, HANDLER_MEMO, cli_dir])
        try:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                env=scratch_env(self.home), cwd=self.home, start_new_session=True)
        except OSError as exc:
            raise GateError(f"cannot start the AWS CLI v2 worker: {exc}") from exc
        if self.killed:  # stop() came while the process was being made
            self.stop()
        self._channel = JsonLinesClient(self.proc)

    def wait_ready(self) -> None:
        line = self._readline(WORKER_START_TIMEOUT)
        if line is None:
            self.kill()
            raise GateError("the AWS CLI v2 worker did not start (no answer)")
        try:
            self.info = json.loads(line)
        except ValueError as exc:
            self.kill()
            said = line + "\n"
            raise GateError(f"the AWS CLI v2 worker said {said!r}") from exc
        if not self.info.get("ready"):
            self.kill()
            raise GateError(f"the AWS CLI v2 worker failed: {self.info.get('error')}")
        if not str(self.info.get("version", "")).startswith("2."):
            self.kill()
            raise GateError(f"the worker imported awscli {self.info.get('version')}, not v2")

    def _readline(self, timeout: float) -> str | None:
        """The worker's next line; None if it sent none in time or exited."""
        if self._channel is None:
            return None
        try:
            return self._channel.read_line(timeout)
        except (NoAnswer, ChildExited):
            return None

    def ask(self, request: dict[str, Any]) -> dict[str, Any] | None:
        """One request; None if the worker died or timed out (then it is killed)."""
        if self.proc is None or self._channel is None or self.proc.poll() is not None:
            return None
        try:
            self._channel.send(request)
        except OSError:
            self.kill()
            return None
        line = self._readline(WORKER_TIMEOUT)
        if line is None:
            self.kill()
            return None
        answer: dict[str, Any] = json.loads(line)
        return answer

    def stop(self) -> None:
        """From any thread, without waiting: SIGKILL the worker's process group (its own
        session), for good. A request or a start in flight then fails."""
        self.killed = True
        proc = self.proc
        if proc is not None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass

    def kill(self) -> None:
        if self.proc is None:
            return
        proc, self.proc, self._channel = self.proc, None, None
        try:
            if proc.stdin:
                proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, 9)
            except OSError:
                pass
            proc.wait(timeout=5)
        try:
            if proc.stdout:
                proc.stdout.close()
        except OSError:
            pass


# --------------------------------------------------------------------------------------
# The checker
# --------------------------------------------------------------------------------------
class StaticChecker:
    """Static checks of runbook code blocks. Owns the AWS CLI v2 worker process.

    Use as a context manager (or call close()). Thread-safe: worker requests are
    serialised by a lock; each check_shell call has its own sandbox directory. With
    start=False the worker starts in :meth:`start`, so that :meth:`kill` can reach it (from
    another thread) while it is still starting."""

    def __init__(self, aws_cli: str | None = None, *, start: bool = True) -> None:
        self.aws_cli = find_aws_cli_v2(aws_cli)
        self.interpreter = cli_interpreter(self.aws_cli)
        self._lock = threading.Lock()
        self._tmp = tempfile.TemporaryDirectory(prefix="runbook-static-")
        self._root = Path(self._tmp.name)
        (self._root / "home").mkdir()
        self._bin = shell.build_toolbox(self._root)
        self._prelude = self._root / "prelude.sh"
        self._bash = shutil.which("bash", path="/usr/bin:/bin") or "/bin/bash"
        self._shellcheck = shutil.which("shellcheck", path="/usr/bin:/usr/local/bin:/bin")
        self._block_seq = 0
        self._killed = False
        self._worker: _Worker | None = None
        if start:
            self.start()

    def start(self) -> None:
        if self._worker is None:
            self.launch()
        assert self._worker is not None
        try:
            self._worker.wait_ready()
        except BaseException:
            self.close()
            raise

    def launch(self) -> None:
        """Start the CLI worker's process without waiting for it (`start` waits): whatever else
        starts meanwhile starts beside it. The thread that launches it is the one whose end
        ends it (bubblewrap's --die-with-parent)."""
        worker = self._worker = _Worker(self.interpreter, str(self._root / "home"), self.aws_cli)
        worker.killed = self._killed  # kill() may have come before the worker existed
        try:
            worker.launch()
        except BaseException:
            self.close()
            raise

    # -- lifecycle ----------------------------------------------------------------------
    def __enter__(self) -> StaticChecker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def kill(self) -> None:
        """From another thread, without the lock a call in flight holds: SIGKILL the CLI
        worker's process group (started in its own session); that call, or a start in
        flight, then fails."""
        self._killed = True
        if self._worker is not None:
            self._worker.stop()

    def close(self) -> None:
        with self._lock:
            if self._worker is not None:
                self._worker.kill()
                self._worker = None
        self._tmp.cleanup()

    # -- aws commands -------------------------------------------------------------------
    def validate_aws(self, argv: tuple[str, ...] | list[str], cwd: str | None = None) \
            -> dict[str, Any]:
        """Validate one aws argv (without "aws") in the worker; returns its raw answer."""
        request = {"argv": list(argv), "cwd": cwd}
        with self._lock:
            if self._worker is None:
                raise GateError("the static checker is closed")
            answer = self._worker.ask(request)
            if answer is None:  # died or hung: one restart, one retry
                self._worker.kill()
                self._worker.start()
                answer = self._worker.ask(request)
                if answer is None:
                    raise GateError(f"the AWS CLI v2 worker died or hung on: aws {' '.join(argv)}")
        if answer.get("internal"):
            raise GateError(answer.get("error", "worker failure"))
        return answer

    def _aws_problems(self, line: int, argv: tuple[str, ...], answer: dict[str, Any],
                      tokens: dict[str, str] | None = None) -> list[StaticProblem]:
        command = answer.get("command") or " ".join(a for a in argv[:2] if not a.startswith("-"))
        label = f"aws {command}".rstrip()
        if not answer.get("ok"):
            msg = str(answer.get("error") or "rejected").strip()
            if msg.startswith("aws: error: "):
                msg = msg[len("aws: error: "):]
            msg = shell.restore_placeholders((msg,), tokens or {})[0]
            return [StaticProblem(line, f"{label}: {msg}")]
        problems = []
        seen = set()
        for call in answer.get("calls") or []:
            if not call.get("validated"):
                continue
            for path, what in check_api_params(call["service"], call["operation"],
                                               call["params"]):
                opt = None if answer.get("custom") else cli_option(path)
                where = f"{opt} ({path})" if opt and "." in path or opt and "[" in path \
                    else (opt or path)
                msg = f"{where}: {what}"
                if msg not in seen:
                    seen.add(msg)
                    problems.append(StaticProblem(line, f"{label}: {msg}"))
        return problems

    # -- shell --------------------------------------------------------------------------
    def check_shell(self, code: str, *, portable: bool = True) -> tuple[list[StaticProblem], list[AwsCall]]:
        """Problems of a shell block, and its aws calls. ``portable``: report forms that only
        GNU (or only BSD/macOS) tools take; False for a block marked ``gnu_only``."""
        problems: list[StaticProblem] = []
        problems.extend(find_placeholders(code))
        runnable, tokens = shell.neutralise_placeholders(code)
        nlines = max(1, len(code.splitlines()))

        with self._lock:
            self._block_seq += 1
            seq = self._block_seq
        block = Path(tempfile.mkdtemp(prefix=f"block{seq}-", dir=self._root))
        try:
            snippet = block / "snippet.sh"
            snippet.write_text(runnable, encoding="utf-8")
            syntax = _problems(shell.bash_syntax(self._bash, snippet, nlines))
            problems.extend(syntax)
            if syntax:
                return _sorted(problems), []
            problems.extend(_problems(shell.shellcheck_errors(self._shellcheck, snippet, self._root)))
            raw_calls, expansion_problems, tools = shell.expand(self._bash, self._bin, self._prelude,
                                                                block, snippet, code)
            problems.extend(_problems(expansion_problems))
            if portable:
                known = shell.portability(code, tools)
                problems.extend(_problems(known))
                # What the rules do not know, another implementation of the tools may refuse.
                problems.extend(_problems(userland.rejections(tools, block)))
            calls: list[AwsCall] = []
            for line, argv in raw_calls:
                answer = self.validate_aws(argv, cwd=str(block / "cwd"))
                shown = shell.restore_placeholders(argv, tokens)
                calls.append(AwsCall(line, shown, answer.get("service"), answer.get("operation")))
                problems.extend(self._aws_problems(line, shown, answer, tokens))
            return _sorted(problems), calls
        finally:
            shutil.rmtree(block, ignore_errors=True)

    # -- python -------------------------------------------------------------------------
    def check_python(self, code: str) -> list[StaticProblem]:
        problems = _problems(check_python_code(code))
        for lineno, line in enumerate(code.splitlines(), 1):
            for m in placeholders.FILL_IN.finditer(line):
                if "-" in m.group(0) and not line.lstrip().startswith("#"):
                    problems.append(StaticProblem(lineno, f"unfilled operator input {m.group(0)}"))
        return _sorted(problems)


def _sorted(problems: list[StaticProblem]) -> list[StaticProblem]:
    out, seen = [], set()
    for p in sorted(problems, key=lambda p: p.line):
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out
