"""A second userland: every call of a common tool, replayed under busybox.

The portability rules (runbook.data.portable) know the GNU-only forms someone listed. There
is no BSD userland to run here, but busybox's applets are another implementation of the same
tools, strict where GNU is lenient: an option or a date it rejects (`date -d '1 hour ago'`,
`grep -P`, `find -printf`) is one the rules may miss. The static tier replays each tool call
the block's expansion recorded, with its argv as bash expanded it, under busybox in one limited
run inside the sandbox (stdin empty, its own scratch directory, 2 s each); a rejection is a
located problem. Without busybox the check is skipped, as the closing note of a run says.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

from runbook.data import portable
from runbook.gate.sandbox.isolation import confine, limited

__all__ = ["BUSYBOX", "rejections"]

BUSYBOX = shutil.which("busybox")
# What busybox says when it refuses the form itself (not a missing file or an empty input).
_REJECTS = re.compile(r"invalid option|unrecognized|unknown option|invalid date|multi-call binary|"
                      r"invalid argument|bad date")
_TIMEOUT = 2  # seconds per call
MAX_REPLAYS = 50
# What busybox said of each argv replayed in this process (its rejection, or None): a replay
# has an empty stdin and an empty folder, so the same argv gets the same answer, and a block
# whose calls were all replayed before needs no sandbox (a third of a static check). Bounded:
# emptied when full.
_ANSWERS: dict[tuple[str, ...], str | None] = {}
MAX_ANSWERS = 4096


def rejections(tools: list[tuple[int, tuple[str, ...]]], scratch: Path) -> list[tuple[int, str]]:
    """(line, message) for each recorded tool call busybox rejects, of those the portability
    rules do not already report."""
    calls = [(line, argv) for line, argv in tools if not portable.argv_findings(argv)][:MAX_REPLAYS]
    if BUSYBOX is None or not calls:
        return []
    answers = {argv: _ANSWERS[argv] for _, argv in calls if argv in _ANSWERS}
    todo = list(dict.fromkeys(argv for _, argv in calls if argv not in answers))
    if todo:
        replayed = _replay(todo, scratch)
        if replayed is None:  # timed out: nothing is known, nothing is reported (as before)
            return []
        if len(_ANSWERS) + len(replayed) > MAX_ANSWERS:
            _ANSWERS.clear()
        _ANSWERS.update(replayed)
        answers.update(replayed)
    return [(line, f"`{shlex.join(call)}` is rejected by another userland (busybox: {answers[call]}): "
                   "write it so that GNU and BSD/macOS tools both take it, or give the command "
                   "`gnu_only: <reason>`")
            for line, call in calls if answers[call] is not None]


def _replay(argvs: list[tuple[str, ...]], scratch: Path) -> dict[tuple[str, ...], str | None] | None:
    """What busybox says of each argv, in one limited run inside the sandbox; None if that run
    did not end in time."""
    assert BUSYBOX is not None
    work = scratch / "busybox"
    work.mkdir()
    lines = [f"cd {shlex.quote(str(work))} || exit 1"]
    for i, argv in enumerate(argvs):
        lines.append(f"{BUSYBOX} timeout {_TIMEOUT} {BUSYBOX} {shlex.join(argv)} </dev/null >/dev/null "
                     f"2>{work}/err.{i}; echo $? >{work}/rc.{i}")
    script = scratch / "busybox.sh"
    script.write_text("\n".join(lines) + "\n", encoding="utf-8")
    run = confine(limited(["/bin/sh", str(script)], writable=[work], cwd=work), writable=[work],
                  readable=[script])
    try:
        subprocess.run(run, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=_TIMEOUT * len(argvs) + 10, start_new_session=True)
    except subprocess.TimeoutExpired:
        return None
    answers: dict[tuple[str, ...], str | None] = {}
    for i, argv in enumerate(argvs):
        err = (work / f"err.{i}").read_text(errors="replace") if (work / f"err.{i}").exists() else ""
        rc = (work / f"rc.{i}").read_text().strip() if (work / f"rc.{i}").exists() else ""
        first = next((x.strip() for x in err.splitlines() if _REJECTS.search(x)), None)
        answers[argv] = first[:200] if rc not in ("", "0") and first else None
    return answers
