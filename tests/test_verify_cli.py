"""`runbook verify`: failures located on the page, the JSON report, exit codes."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from .conftest import ROOT

AWS_CLI = os.environ.get("RUNBOOK_AWS_CLI", "/usr/bin/aws")


def verify(*args: str, cwd: Path, aws_cli: str = AWS_CLI, cache: bool = False) -> subprocess.CompletedProcess[str]:
    """`runbook verify` as a user runs it; every block run (no cache) unless `cache`."""
    env = {**os.environ, "RUNBOOK_AWS_CLI": aws_cli, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run(
        [sys.executable, "-m", "runbook", "verify", "--mkdocs", str(ROOT / "mkdocs.yml"),
         *([] if cache else ["--no-cache"]), *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
    )


def test_a_page_with_broken_commands_fails_at_each_block(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(ROOT / "docs", docs)
    shutil.copy(ROOT / "tests/data/broken_docs/broken.md", docs / "broken.md")
    proc = verify("--docs", "docs", "--page", "broken.md", "--report", "r.json", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    failures = [line for line in lines if line.startswith("docs/broken.md:")]
    assert [f.split(" [")[0] for f in failures] == [f"docs/broken.md:{n}" for n in (5, 9, 13, 17, 21)]
    assert "static: failed: line 6: aws logs filter-log-events: Unknown options: --filter-patern" in failures[0]
    assert "Invalid choice: 'get-function-configuraton', maybe you meant: get-function-configuration" in failures[1]
    assert failures[2].startswith("docs/broken.md:13 [dev] exec: failed:")
    assert "ResourceNotFoundException" in failures[2]
    assert "--key" in failures[3] and "JSON" in failures[3]
    assert "required" in failures[4] and "--queue-url" in failures[4]
    assert lines[-2] == "dev: 2 run (static+exec, 1 also under zsh), 4 static only, 0 skipped"
    assert lines[-1] == "1 passed, 5 failed, 0 skipped"
    report = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert report["summary"]["failed"] == 5 and report["summary"]["passed"] == 1
    first = report["results"][0]
    assert set(first) == {"page", "line", "env", "tier", "status", "command", "message", "origin", "impact",
                          "digest"}
    # The misspelt operation is no operation the IAM database knows: never read-only.
    assert lines[-3] == "commands by IAM access level: 5 read-only, 1 state-changing, 0 deleting"
    assert first["page"] == "docs/broken.md" and first["line"] == 5 and first["env"] == "dev"


def test_report_lists_every_block_of_every_page_for_every_environment(tmp_path: Path) -> None:
    proc = verify("--static-only", "--report", "r.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))["results"]
    pages = {r["page"] for r in results}
    assert "docs/alarms/lambda-errors.md" in pages and "docs/index.md" in pages
    assert {r["env"] for r in results} == {"dev", "prod"}
    by_page_env = {(r["page"], r["env"]) for r in results}
    assert ("docs/alarms/sqs-dlq.md", "prod") in by_page_env
    assert all(r["status"] in {"passed", "skipped"} for r in results)
    skipped = [r for r in results if r["status"] == "skipped"]
    assert skipped and all(r["message"] for r in skipped)


def test_only_the_chosen_environment_is_verified(tmp_path: Path) -> None:
    proc = verify("--static-only", "--env", "prod", "--report", "r.json", "--page", "*lambda-errors.md", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    results = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))["results"]
    assert results and {r["env"] for r in results} == {"prod"}


def test_without_the_cli_v2_the_gate_refuses_with_exit_2(tmp_path: Path) -> None:
    fake = tmp_path / "aws"
    fake.write_text("#!/bin/sh\necho 'aws-cli/1.45.11 Python/3.11.7 Linux botocore/1.43.11'\n")
    fake.chmod(0o755)
    proc = verify("--static-only", "--page", "*index.md", cwd=tmp_path, aws_cli=str(fake))
    assert proc.returncode == 2
    assert "v2" in proc.stderr and "Traceback" not in proc.stderr
    proc = verify("--static-only", "--page", "*index.md", cwd=tmp_path, aws_cli=str(tmp_path / "missing"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_an_unknown_environment_is_refused(tmp_path: Path) -> None:
    proc = verify("--env", "staging", cwd=tmp_path)
    assert proc.returncode == 2
    assert "unknown environment 'staging' (known: dev, prod)" in proc.stderr


def _docs(tmp_path: Path, pages: dict[str, str]) -> Path:
    docs = tmp_path / "d"
    docs.mkdir()
    for name, text in pages.items():
        (docs / name).write_text(text, encoding="utf-8")
    return docs


def test_an_unclosed_fence_fails_the_build_at_its_line(tmp_path: Path) -> None:
    _docs(tmp_path, {
        "page.md": "# P\n\n```bash\naws sts get-caller-identity\n```\n\n```bash\naws s3 ls\n\nthe rest\n",
    })
    proc = verify("--docs", "d", "--static-only", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "d/page.md:7: code fence opened here is never closed" in proc.stderr
    assert "passed" not in proc.stdout


def test_a_docs_folder_without_an_executable_block_is_exit_2(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "r.json").write_text('{"results": [], "summary": {}}\n')  # stale, from an older run
    proc = verify("--docs", "empty", "--static-only", "--report", "r.json", cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "runbook verify: no executable block in empty" in proc.stderr
    assert not (tmp_path / "r.json").exists()


def test_a_page_glob_that_matches_no_page_is_exit_2(tmp_path: Path) -> None:
    proc = verify("--static-only", "--page", "*no-such-page*", cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "runbook verify: --page '*no-such-page*' matches no page (pages: docs/alarms/" in proc.stderr
    assert "0 blocks" not in proc.stdout


def test_a_selection_without_an_executable_block_is_exit_2(tmp_path: Path) -> None:
    _docs(tmp_path, {
        "a.md": "# A\n\n```bash\naws sts get-caller-identity\n```\n",
        "b.md": "# B\n\n```text\nnot a command\n```\n",
    })
    proc = verify("--docs", "d", "--static-only", "--page", "b.md", cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "runbook verify: no executable block selected by --page 'b.md'" in proc.stderr


def test_static_only_says_that_nothing_was_executed(tmp_path: Path) -> None:
    proc = verify("--static-only", "--page", "*lambda-errors.md", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[-2] == "static only: nothing was executed"
    tiers = lines[-3]
    assert tiers.startswith("dev: 0 run (static+exec), ") and "; prod: 0 run (static+exec), " in tiers
    assert re.fullmatch(r"\d+ passed, \d+ failed, \d+ skipped", lines[-1])


def test_a_command_that_only_bash_accepts_fails_under_zsh(tmp_path: Path) -> None:
    """An unquoted JMESPath index is a glob: bash passes it on, zsh (macOS's shell) stops."""
    docs = tmp_path / "docs"
    shutil.copytree(ROOT / "docs", docs)
    (docs / "zsh.md").write_text(
        "# zsh\n\n```bash\naws sqs list-queues --query QueueUrls[0] --output text\n```\n\n"
        "```bash\naws sqs list-queues --query 'QueueUrls[0]' --output text\n```\n", encoding="utf-8")
    proc = verify("--docs", "docs", "--page", "zsh.md", "--env", "dev", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("docs/zsh.md:3 [dev] exec: failed: under zsh (macOS's shell): exit status 1")
    assert "no matches found: QueueUrls[0]" in proc.stdout
    assert lines[-2] == "dev: 2 run (static+exec, 2 also under zsh), 0 static only, 0 skipped"
    assert lines[-1] == "1 passed, 1 failed, 0 skipped"


def test_an_unchanged_block_comes_from_the_cache_and_a_changed_one_runs(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(ROOT / "docs", docs)
    page = docs / "c.md"
    one, two = "aws sqs get-queue-url --queue-name kanjona-dev-leads", "aws sts get-caller-identity"
    page.write_text(f"# C\n\n```bash\n{one}\n```\n\n```bash\n{two}\n```\n", encoding="utf-8")
    args = ("--docs", "docs", "--page", "c.md", "--env", "dev", "--cache-dir", str(tmp_path / "cache"))
    first = verify(*args, cwd=tmp_path, cache=True)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "0 result(s) from the verification cache, 2 checked now" in first.stdout
    again = verify(*args, "--report", "r.json", cwd=tmp_path, cache=True)
    assert again.returncode == 0 and "2 result(s) from the verification cache, 0 checked now" in again.stdout
    assert again.stdout.splitlines()[-1] == first.stdout.splitlines()[-1] == "2 passed, 0 failed, 0 skipped"
    report = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert report["summary"]["from_cache"] == 2
    page.write_text(page.read_text(encoding="utf-8").replace(two, two + " --output json"), encoding="utf-8")
    changed = verify(*args, cwd=tmp_path, cache=True)
    assert "1 result(s) from the verification cache, 1 checked now" in changed.stdout, changed.stdout
    everything = verify(*args, "--no-cache", cwd=tmp_path, cache=True)
    assert "from the verification cache" not in everything.stdout and everything.returncode == 0


def test_shards_split_the_blocks_the_same_way_every_time(tmp_path: Path) -> None:
    def blocks(name: str) -> set[tuple[str, int, str]]:
        results = json.loads((tmp_path / name).read_text(encoding="utf-8"))["results"]
        return {(r["page"], r["line"], r["env"]) for r in results}

    whole = verify("--static-only", "--report", "all.json", cwd=tmp_path)
    assert whole.returncode == 0, whole.stdout + whole.stderr
    keys = {}
    for k in (1, 2, 3):
        part = verify("--static-only", "--shard", f"{k}/3", "--report", f"{k}.json", cwd=tmp_path)
        assert part.returncode == 0, part.stdout + part.stderr
        keys[k] = blocks(f"{k}.json")
    assert all(keys.values()) and not (keys[1] & keys[2] or keys[1] & keys[3] or keys[2] & keys[3])
    assert keys[1] | keys[2] | keys[3] == blocks("all.json")
    verify("--static-only", "--shard", "2/3", "--report", "2b.json", cwd=tmp_path)
    assert blocks("2b.json") == keys[2]  # the same blocks on every run
    # Merged, the shards' reports are the unsharded one.
    merged = subprocess.run([sys.executable, "-m", "runbook", "merge-reports", "1.json", "2.json", "3.json",
                             "--out", "merged.json"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert merged.returncode == 0, merged.stdout + merged.stderr
    one, whole = (json.loads((tmp_path / n).read_text(encoding="utf-8")) for n in ("merged.json", "all.json"))
    assert one["results"] == whole["results"]
    assert {k: one["summary"][k] for k in ("passed", "failed", "skipped", "impact")} == \
        {k: whole["summary"][k] for k in ("passed", "failed", "skipped", "impact")}
    overlap = subprocess.run([sys.executable, "-m", "runbook", "merge-reports", "1.json", "2b.json", "2.json",
                              "--out", "x.json"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert overlap.returncode == 1 and "the reports overlap" in overlap.stderr
    bad = verify("--shard", "4/3", cwd=tmp_path)
    assert bad.returncode == 2 and "give K/N with 1 <= K <= N" in bad.stderr
