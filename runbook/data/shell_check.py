"""`bash -n` of every shell command as rendered in every environment it applies to.

Each distinct rendered text gets its own `bash -n` (a few at a time): parsed together, an unclosed
quote in one command could be closed by a quote in the next, and the error would go unseen.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

from runbook.data import placeholders
from runbook.data.model import Catalog, Command
from runbook.errors import Loc, Problem

_LINE = re.compile(r"line (\d+): (.*)")


def syntax_errors(bash: str, script: str) -> list[tuple[int, str]]:
    """(line, message) of each syntax error `bash -n` reports in `script`; [] if it parses.

    The one `bash -n` of the project: `runbook check` and the gate's static tier use it."""
    # Parse only: no startup files, no BASH_ENV, nothing of the caller's environment.
    proc = subprocess.run([bash, "--noprofile", "--norc", "-n"], input=script, capture_output=True, text=True,
                          timeout=30, env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
    if proc.returncode == 0:
        return []
    found = []
    for m in _LINE.finditer(proc.stderr):
        message = m.group(2).strip()
        if not message.startswith("`"):  # bash echoes the offending line: not a message
            found.append((int(m.group(1)), message))
    return found or [(1, " ".join(proc.stderr.split()) or "syntax error")]


def _bash_n(bash: str, script: str) -> tuple[int, str] | None:
    """(line, message) of the first syntax error in `script`, or None if bash parses it."""
    try:
        errors = syntax_errors(bash, script)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 1, f"bash -n did not run ({type(exc).__name__})"
    if not errors:
        return None
    line, message = errors[0]
    return line, message.replace("`", "'")


def rendered(cat: Catalog, cmd: Command, env: str) -> str:
    """The command's shell code in `env`, operator inputs replaced by their sample values."""
    def fill(name: str) -> str:
        inp = cat.inputs.get(name)
        # Anything else (a deploy-time id, an unknown name) is reported elsewhere: a plain word here.
        return inp.sample if inp is not None else re.sub(r"\W", "_", name)

    return placeholders.substitute(cmd.shell or "", cat.scope(env), fill)


def check(cat: Catalog, bash: str | None = None) -> list[Problem]:
    bash = bash or shutil.which("bash")
    if bash is None:
        return []
    env_names = [e.name for e in cat.environments]
    texts: dict[str, list[tuple[Command, str]]] = {}  # rendered text → (command, env) using it
    for cmd in cat.commands():
        if cmd.shell is None:
            continue
        for env in cmd.only or env_names:
            if env in env_names:
                texts.setdefault(rendered(cat, cmd, env), []).append((cmd, env))
    if not texts:
        return []
    with ThreadPoolExecutor(max_workers=4) as pool:
        errors = list(pool.map(lambda text: _bash_n(bash, text + "\n"), texts))
    failed: dict[int, tuple[Command, list[str], int, str]] = {}
    for (_text, users), error in zip(texts.items(), errors, strict=True):
        if error is None:
            continue
        line, message = error
        for cmd, env in users:
            entry = failed.setdefault(id(cmd), (cmd, [], line, message))
            entry[1].append(env)
    problems = []
    for cmd, envs, line, message in failed.values():
        code = cmd.shell or ""
        offset = 0
        for _ in range(min(line, code.count("\n") + 1) - 1):
            offset = code.index("\n", offset) + 1
        loc = cmd.anchor.text_at(offset, "shell") if cmd.anchor is not None else Loc("runbook_data")
        applies = [e for e in env_names if not cmd.only or e in cmd.only]
        where = "" if sorted(envs) == sorted(applies) else f" in {', '.join(envs)}"
        problems.append(Problem(loc, f"shell command is not valid bash{where} (bash -n: {message})"))
    return problems
