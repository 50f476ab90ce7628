#!/usr/bin/env python3
"""Multiply the runbook the way a growing team would grow it, for the scale benchmarks.

Copies the project (mkdocs.yml, docs, macros, runbook, runbook_data) into OUT, then:
- alarms: copies of the data's alarms under new ids (``lambda-errors-c2``, ...), each in its
  own group file, round-robin, until there are ALARMS in all;
- environments: copies of the production environment as new ones (``prod2``, ...), each with
  its own account, until there are ENVS in all.

The copies are made on the YAML text, so each copy keeps the comments and the line layout of
its original (errors still point at a line a person could edit).

Usage: .venv/bin/python scripts/multiply_runbook.py --alarms 120 --envs 3 OUT
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COPIED = ("docs", "macros", "runbook", "runbook_data")
ALARM_START = re.compile(r"^  - id: (\S+)\s*$", re.M)


def _alarm_blocks(text: str) -> tuple[str, list[tuple[str, str]]]:
    """A group file's head and its alarms: (id, the alarm's lines) in file order."""
    starts = [m.start() for m in ALARM_START.finditer(text)]
    head = text[:starts[0]] if starts else text
    blocks = []
    for i, start in enumerate(starts):
        block = text[start:starts[i + 1] if i + 1 < len(starts) else len(text)]
        m = ALARM_START.match(block)
        assert m is not None
        blocks.append((m.group(1), block if block.endswith("\n") else block + "\n"))
    return head, blocks


def multiply_alarms(data: Path, total: int) -> int:
    """Grow the alarms to `total` (never fewer than there are); returns how many there are."""
    files = sorted((data / "alarms").glob("*.yaml"))
    groups = {f: _alarm_blocks(f.read_text(encoding="utf-8")) for f in files}
    originals = [(f, alarm_id, block) for f, (_, blocks) in groups.items() for alarm_id, block in blocks]
    extra: dict[Path, list[str]] = {f: [] for f in files}
    copy = 1
    count = len(originals)
    while count < total:
        copy += 1
        for f, alarm_id, block in originals:
            if count >= total:
                break
            new_id = f"{alarm_id}-c{copy}"
            block = ALARM_START.sub(f"  - id: {new_id}", block, count=1)
            block = re.sub(r"^(    name: .*)$", rf"\g<1>-c{copy}", block, count=1, flags=re.M)
            extra[f].append(block)
            count += 1
    for f, blocks in extra.items():
        if blocks:
            text = f.read_text(encoding="utf-8")
            f.write_text(text.rstrip("\n") + "\n\n" + "\n".join(blocks), encoding="utf-8")
    return count


def multiply_envs(data: Path, total: int) -> int:
    """Grow the environments to `total` with copies of the production one."""
    path = data / "environments.yaml"
    text = path.read_text(encoding="utf-8")
    starts = [m.start() for m in re.finditer(r"^  - name: ", text, re.M)]
    blocks = [text[s:starts[i + 1] if i + 1 < len(starts) else len(text)] for i, s in enumerate(starts)]
    prod = next(b for b in blocks if "production: true" in b)
    name = re.search(r"^  - name: (\S+)", prod, re.M).group(1)  # type: ignore[union-attr]
    added = []
    for k in range(2, total - len(blocks) + 2):
        block = prod.replace(f"  - name: {name}", f"  - name: {name}{k}", 1)
        block = re.sub(r"^    title: (.*)$", rf"    title: \g<1> {k}", block, count=1, flags=re.M)
        block = re.sub(r'^    account: "\d+"', f'    account: "{900000000000 + k:012d}"', block, count=1, flags=re.M)
        block = block.replace(f"kanjona-{name}-", f"kanjona-{name}{k}-")
        added.append(block.rstrip("\n") + "\n")
    if added:
        path.write_text(text.rstrip("\n") + "\n\n" + "\n".join(added), encoding="utf-8")
    return len(blocks) + len(added)


def multiply(out: Path, alarms: int, envs: int) -> tuple[int, int]:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for name in COPIED:
        shutil.copytree(ROOT / name, out / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "mkdocs.yml", out / "mkdocs.yml")
    return multiply_alarms(out / "runbook_data", alarms), multiply_envs(out / "runbook_data", envs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alarms", type=int, required=True)
    parser.add_argument("--envs", type=int, required=True)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    alarms, envs = multiply(args.out, args.alarms, args.envs)
    print(f"{args.out}: {alarms} alarms x {envs} environments")
    return 0


if __name__ == "__main__":
    sys.exit(main())
