"""Finding the AWS CLI v2 to validate with, and the Python interpreter that runs it."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

from runbook.errors import GateError
from runbook.gate.sandbox import environment

__all__ = ["cli_interpreter", "find_aws_cli_v2", "python_shebang", "scratch_env"]

_VERIFIED_CLIS: set[tuple[str, int, int]] = set()


def scratch_env(home: str) -> dict[str, str]:
    """The environment of the static tier's CLI processes: stub keys, nothing of the host."""
    return {
        **environment.base("/usr/bin:/bin", home), "LC_ALL": "C.UTF-8",
        **environment.STUB_CREDENTIALS, **environment.NO_CONFIG_FILES, **environment.NO_PAGER,
        "AWS_CLI_AUTO_PROMPT": "off", "PYTHONNOUSERSITE": "1", "PYTHONDONTWRITEBYTECODE": "1",
    }


def find_aws_cli_v2(explicit: str | None = None) -> str:
    """Path of the AWS CLI v2 to validate with: ``explicit``, else ``$RUNBOOK_AWS_CLI``,
    else the first ``aws`` on PATH. Raises GateError unless it runs and says aws-cli/2."""
    source = "argument"
    cli = explicit
    if not cli:
        cli, source = os.environ.get("RUNBOOK_AWS_CLI") or None, "RUNBOOK_AWS_CLI"
    if not cli:
        cli, source = shutil.which("aws"), "PATH"
        if not cli:
            raise GateError("no AWS CLI found: set RUNBOOK_AWS_CLI to the AWS CLI v2 "
                            "(e.g. /usr/bin/aws from Debian's awscli package)")
    if os.sep not in cli:
        found = shutil.which(cli)
        if not found:
            raise GateError(f"AWS CLI {cli!r} (from {source}) is not on PATH")
        cli = found
    if not os.path.isfile(cli) or not os.access(cli, os.X_OK):
        raise GateError(f"AWS CLI {cli!r} (from {source}) does not exist or is not executable")
    stat = os.stat(cli)
    key = (cli, stat.st_mtime_ns, stat.st_size)
    if key in _VERIFIED_CLIS:  # `aws --version` costs ~0.5 s: once per process
        return cli
    with tempfile.TemporaryDirectory(prefix="gate-aws-version-") as home:
        env = dict(os.environ)  # a pyenv shim needs the caller's PATH and PYENV_*
        env.update({k: v for k, v in scratch_env(home).items() if k != "PATH"})
        try:
            proc = subprocess.run([cli, "--version"], capture_output=True, text=True,
                                  timeout=60, env=env, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise GateError(f"cannot run {cli} --version: {exc}") from exc
    version = (proc.stdout.strip() or proc.stderr.strip()).splitlines()
    version_line = version[0] if version else ""
    if not version_line.startswith("aws-cli/2."):
        shown = version_line or f"exit status {proc.returncode}, no version printed"
        raise GateError(
            f"{cli} (from {source}) is not AWS CLI v2: {shown!r}; the gate needs aws-cli/2.x "
            "(set RUNBOOK_AWS_CLI=/usr/bin/aws, Debian's awscli package)")
    _VERIFIED_CLIS.add(key)
    return cli


def _first_line(script: str) -> bytes:
    with open(script, "rb") as fh:
        return fh.readline(512)


def python_shebang(script: str) -> list[str] | None:
    """How a Python script's ``#!`` line runs it: ``[interpreter]`` or ``[interpreter,
    argument]`` (one argument, as the kernel passes it; ``/usr/bin/env python3`` gives the
    ``python3`` found on the system's PATH). None if the script has no ``#!`` line or its
    interpreter is not Python; OSError if it cannot be read."""
    first = _first_line(script)
    if not first.startswith(b"#!"):
        return None
    words = first[2:].decode("utf-8", "replace").strip().split(None, 1)
    if not words:
        return None
    interpreter, argument = words[0], words[1] if len(words) > 1 else ""
    if os.path.basename(interpreter) == "env" and argument:
        program, _, argument = argument.partition(" ")
        found = shutil.which(program, path="/usr/local/bin:/usr/bin:/bin")
        if not found:
            return None
        interpreter, argument = found, argument.strip()
    if "python" not in os.path.basename(interpreter):
        return None
    return [interpreter, argument] if argument else [interpreter]


def cli_interpreter(cli: str) -> str:
    """The Python interpreter that runs the CLI script (its shebang); GateError if none."""
    real = os.path.realpath(cli)
    try:
        interpreter = python_shebang(real)
        first = _first_line(real)
    except OSError as exc:
        raise GateError(f"cannot read {real}: {exc}") from exc
    if interpreter is not None:
        return interpreter[0]
    if not first.startswith(b"#!"):
        raise GateError(f"{real} is not a Python script (no shebang): the static gate runs "
                        "the CLI v2 in-process and needs a Python-based install such as "
                        "Debian's /usr/bin/aws")
    raise GateError(f"{real} is not run by Python (shebang {first!r})")
