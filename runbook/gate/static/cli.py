"""Finding the AWS CLI v2 to validate with, and the Python interpreter that runs it."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading

from runbook.errors import GateError
from runbook.gate.sandbox import environment

__all__ = ["asked_for", "cli_interpreter", "find_aws_cli_v2", "python_shebang", "scratch_env"]


def scratch_env(home: str) -> dict[str, str]:
    """The environment of the static tier's CLI processes: stub keys, nothing of the host."""
    return {
        **environment.base("/usr/bin:/bin", home), "LC_ALL": "C.UTF-8",
        **environment.STUB_CREDENTIALS, **environment.NO_CONFIG_FILES, **environment.NO_PAGER,
        "AWS_CLI_AUTO_PROMPT": "off", "PYTHONNOUSERSITE": "1", "PYTHONDONTWRITEBYTECODE": "1",
    }


# Where Debian's awscli package puts the CLI v2: tried after every `aws` on PATH.
FALLBACK_AWS_CLI = "/usr/bin/aws"
_VERSION_TIMEOUT = 60.0  # seconds for one `aws --version` (a cold CLI v2 takes ~0.5 s)
# The first line `--version` printed, per file version: each CLI is probed once per process.
_VERSIONS: dict[tuple[str, int, int], tuple[bool, str]] = {}
_VERSIONS_LOCK = threading.Lock()  # a second asker waits for the probe in flight (run.main's)


def _version(cli: str) -> tuple[bool, str]:
    """(True, first line of ``cli --version``) or (False, why it did not run). Bounded by
    ``_VERSION_TIMEOUT``; what a CLI that ran printed is cached per (path, mtime, size)."""
    try:
        stat = os.stat(cli)
    except OSError as exc:
        return False, f"cannot stat it: {exc.strerror or exc}"
    key = (cli, stat.st_mtime_ns, stat.st_size)
    with _VERSIONS_LOCK:
        if key in _VERSIONS:  # `aws --version` costs ~0.5 s: once per process
            return _VERSIONS[key]
        return _probe(cli, key)


def _probe(cli: str, key: tuple[str, int, int]) -> tuple[bool, str]:
    with tempfile.TemporaryDirectory(prefix="gate-aws-version-") as home:
        env = dict(os.environ)  # a pyenv shim needs the caller's PATH and PYENV_*
        env.update({k: v for k, v in scratch_env(home).items() if k != "PATH"})
        try:
            proc = subprocess.run([cli, "--version"], capture_output=True, text=True,
                                  timeout=_VERSION_TIMEOUT, env=env, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            outcome = (False, f"`{cli} --version` did not answer in {_VERSION_TIMEOUT:g} s")
        except OSError as exc:
            outcome = (False, f"cannot run {cli} --version: {exc}")
        else:
            lines = (proc.stdout.strip() or proc.stderr.strip()).splitlines()
            outcome = _VERSIONS[key] = (
                True, lines[0] if lines else f"exit status {proc.returncode}, no version printed")
    return outcome


def version_of(cli: str) -> str:
    """The CLI's name and version (``aws-cli/2.x.y``), or "" when it did not run: asked once
    per process (the gate found the CLI by asking the same)."""
    ran, line = _version(cli)
    return line.split(" ")[0] if ran else ""


def _is_v2(version_line: str) -> bool:
    return version_line.startswith("aws-cli/2.")


def _candidates() -> list[str]:
    """Every executable ``aws`` on PATH, in PATH order, then FALLBACK_AWS_CLI; one path per
    program (``/bin/aws`` is ``/usr/bin/aws`` where /bin links to /usr/bin)."""
    found: list[str] = []
    seen: set[str] = set()
    dirs = [d for d in os.environ.get("PATH", os.defpath).split(os.pathsep) if d]
    for path in [os.path.join(d, "aws") for d in dirs] + [FALLBACK_AWS_CLI]:
        path = os.path.abspath(path)
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            continue
        real = os.path.realpath(path)
        if real not in seen:
            seen.add(real)
            found.append(path)
    return found


def _discover() -> str:
    """The first AWS CLI v2 among the candidates; GateError listing each one tried otherwise."""
    tried: list[str] = []
    for cli in _candidates():
        ran, version = _version(cli)
        if ran and _is_v2(version):
            return cli
        tried.append(f"{cli} ({version!r})" if ran else f"{cli} ({version})")
    how = (f"install Debian's awscli package (the AWS CLI v2, {FALLBACK_AWS_CLI}) "
           "or set RUNBOOK_AWS_CLI to an AWS CLI v2")
    if not tried:
        raise GateError(f"no AWS CLI found (no aws on PATH, no {FALLBACK_AWS_CLI}): {how}")
    raise GateError(f"no AWS CLI v2 found: tried {', '.join(tried)}; the gate needs aws-cli/2.x: {how}")


def asked_for(explicit: str | None = None) -> tuple[str, str] | None:
    """The executable of the CLI asked for (``explicit``, else ``$RUNBOOK_AWS_CLI``) and where
    it was asked, not yet run; None when none was asked for; GateError if it is not there."""
    source = "argument"
    cli = explicit
    if not cli:
        cli, source = os.environ.get("RUNBOOK_AWS_CLI") or None, "RUNBOOK_AWS_CLI"
    if not cli:
        return None
    if os.sep not in cli:
        found = shutil.which(cli)
        if not found:
            raise GateError(f"AWS CLI {cli!r} (from {source}) is not on PATH")
        cli = found
    if not os.path.isfile(cli) or not os.access(cli, os.X_OK):
        raise GateError(f"AWS CLI {cli!r} (from {source}) does not exist or is not executable")
    return cli, source


def find_aws_cli_v2(explicit: str | None = None) -> str:
    """Path of the AWS CLI v2 to validate with: ``explicit``, else ``$RUNBOOK_AWS_CLI``, else
    the first of every ``aws`` on PATH (in PATH order) and then /usr/bin/aws that says
    aws-cli/2. A CLI that was asked for (``explicit`` or ``$RUNBOOK_AWS_CLI``) is used or
    refused, never replaced: GateError unless it runs and says aws-cli/2. With nothing asked
    for, GateError only if no candidate is a v2, naming each one tried and its version."""
    asked = asked_for(explicit)
    if asked is None:
        return _discover()
    cli, source = asked
    ran, version = _version(cli)
    if not ran:
        raise GateError(version)
    if not _is_v2(version):
        raise GateError(
            f"{cli} (from {source}) is not AWS CLI v2: {version!r}; the gate needs aws-cli/2.x "
            f"(set RUNBOOK_AWS_CLI={FALLBACK_AWS_CLI}, Debian's awscli package)")
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
