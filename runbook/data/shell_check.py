"""`bash -n` of every shell command as rendered in every environment it applies to.

Each distinct rendered text gets its own `bash -n` (a few at a time): parsed together, an unclosed
quote in one command could be closed by a quote in the next, and the error would go unseen.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

from runbook.data import disk_cache, placeholders
from runbook.data.model import Catalog, Command
from runbook.errors import Loc, Problem

_LINE = re.compile(r"line (\d+): (.*)")
DID_NOT_RUN = "bash -n did not run"


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
        return 1, f"{DID_NOT_RUN} ({type(exc).__name__})"
    if not errors:
        return None
    line, message = errors[0]
    return line, message.replace("`", "'")


def _checked(cat: Catalog, bash: str, texts: list[str]) -> list[tuple[int, str] | None]:
    """`_bash_n` of each text (a few at a time). What each text gave is kept on disk for this
    bash (disk_cache, beside the data): a load after one file changed runs bash only for the
    commands that changed."""
    memo = _memo_key(bash)
    kept = disk_cache.get(cat.root, memo, "bash-n") if memo else None
    known: dict[str, tuple[int, str] | None] = kept if isinstance(kept, dict) else {}
    digests = [hashlib.sha256(text.encode()).hexdigest() for text in texts]
    todo = [(d, text) for d, text in zip(digests, texts, strict=True) if d not in known]
    if todo:
        with ThreadPoolExecutor(max_workers=4) as pool:
            found = dict(zip((d for d, _ in todo), pool.map(lambda item: _bash_n(bash, item[1] + "\n"), todo),
                             strict=True))
        fresh = {d: e for d, e in found.items() if not (e and e[1].startswith(DID_NOT_RUN))}  # asked again
        if memo and fresh:  # this catalog's texts only: the entry does not grow with every edit
            disk_cache.put(cat.root, memo, {d: known[d] for d in digests if d in known} | fresh, "bash-n")
        known = known | found
    return [known[d] for d in digests]


def _memo_key(bash: str) -> str:
    """The disk cache's key of one bash binary's answers; "" when the cache is off."""
    try:
        st = os.stat(bash)
    except OSError:
        return ""
    if not disk_cache.enabled():
        return ""
    return disk_cache.inputs_key(extra=f"bash -n\0{bash}\0{st.st_size}:{st.st_mtime_ns}:{st.st_ino}")


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
    errors = _checked(cat, bash, list(texts))
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
