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


def rejections(tools: list[tuple[int, tuple[str, ...]]], scratch: Path) -> list[tuple[int, str]]:
    """(line, message) for each recorded tool call busybox rejects, of those the portability
    rules do not already report."""
    calls = [(line, argv) for line, argv in tools if not portable.argv_findings(argv)][:MAX_REPLAYS]
    if BUSYBOX is None or not calls:
        return []
    work = scratch / "busybox"
    work.mkdir()
    lines = [f"cd {shlex.quote(str(work))} || exit 1"]
    for i, (_, argv) in enumerate(calls):
        lines.append(f"{BUSYBOX} timeout {_TIMEOUT} {BUSYBOX} {shlex.join(argv)} </dev/null >/dev/null "
                     f"2>{work}/err.{i}; echo $? >{work}/rc.{i}")
    script = scratch / "busybox.sh"
    script.write_text("\n".join(lines) + "\n", encoding="utf-8")
    run = confine(limited(["/bin/sh", str(script)], writable=[work], cwd=work), writable=[work],
                  readable=[script])
    try:
        subprocess.run(run, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=_TIMEOUT * len(calls) + 10, start_new_session=True)
    except subprocess.TimeoutExpired:
        return []
    found: list[tuple[int, str]] = []
    for i, (line, call) in enumerate(calls):
        err = (work / f"err.{i}").read_text(errors="replace") if (work / f"err.{i}").exists() else ""
        rc = (work / f"rc.{i}").read_text().strip() if (work / f"rc.{i}").exists() else ""
        first = next((x.strip() for x in err.splitlines() if _REJECTS.search(x)), None)
        if rc not in ("", "0") and first:
            found.append((line, f"`{shlex.join(call)}` is rejected by another userland (busybox: {first[:200]}): "
                                "write it so that GNU and BSD/macOS tools both take it, or give the command "
                                "`gnu_only: <reason>`"))
    return found
