"""The validated catalog kept on disk (runbook.data.disk_cache): reused only for the same files and code."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from runbook.data import disk_cache
from runbook.data import load as load_mod
from runbook.errors import RunbookError

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(ROOT / "runbook_data", tmp_path / "runbook_data")
    monkeypatch.setenv("RUNBOOK_CATALOG_CACHE", "1")
    return tmp_path / "runbook_data"


def _fresh_process(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Forget the in-memory cache (a new process) and count the reads of the data."""
    monkeypatch.setattr(load_mod, "_CACHE", {})
    reads: list[Path] = []
    real = load_mod.load

    def counted(root, site_url=None):  # type: ignore[no-untyped-def]
        reads.append(Path(root))
        return real(root, site_url)

    monkeypatch.setattr(load_mod, "load", counted)
    return reads


def test_a_second_process_takes_the_kept_catalog_and_an_edit_reads_again(data: Path, monkeypatch) -> None:
    reads = _fresh_process(monkeypatch)
    first = load_mod.load_cached(data, "https://x/")
    assert len(reads) == 1 and list((data.parent / ".cache" / "catalog").glob("*.pickle"))
    reads = _fresh_process(monkeypatch)
    again = load_mod.load_cached(data, "https://x/")
    assert reads == [] and [a.id for a in again.alarms] == [a.id for a in first.alarms]
    assert again.alarms[0].loc == first.alarms[0].loc  # errors found later still point at the YAML
    # Another site_url, an edited file, other code: each is read afresh.
    load_mod.load_cached(data, "https://other/")
    path = data / "alarms" / "sqs.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("title: SQS DLQ Messages", "title: DLQ", 1),
                    encoding="utf-8")
    monkeypatch.setattr(load_mod, "_CACHE", {})
    assert any(a.title == "DLQ" for a in load_mod.load_cached(data, "https://x/").alarms)
    monkeypatch.setattr(load_mod, "_CACHE", {})
    monkeypatch.setattr(disk_cache, "_code_digest", "other code")
    load_mod.load_cached(data, "https://x/")
    assert len(reads) == 3


def test_data_with_problems_is_never_kept(data: Path, monkeypatch) -> None:
    path = data / "alarms" / "sqs.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("severity: high", "severity: sometimes", 1),
                    encoding="utf-8")
    for _ in range(2):  # the second time too: found afresh, with its line
        _fresh_process(monkeypatch)
        with pytest.raises(RunbookError, match="sqs.yaml:10:"):
            load_mod.load_cached(data)
    assert not list((data.parent / ".cache" / "catalog").glob("*.pickle"))


def test_off_switch_and_an_unusable_cache_only_cost_time(data: Path, monkeypatch) -> None:
    monkeypatch.setenv("RUNBOOK_CATALOG_CACHE", "0")
    reads = _fresh_process(monkeypatch)
    load_mod.load_cached(data)
    assert len(reads) == 1 and not (data.parent / ".cache").exists()
    monkeypatch.setenv("RUNBOOK_CATALOG_CACHE", "1")
    (data.parent / ".cache").write_text("not a folder", encoding="utf-8")  # cannot be written
    reads = _fresh_process(monkeypatch)
    assert load_mod.load_cached(data).alarms and len(reads) == 1
    (data.parent / ".cache").unlink()
    load_mod.load_cached(data, "x")
    kept = next((data.parent / ".cache" / "catalog").glob("*.pickle"))
    kept.write_bytes(b"garbage")  # a torn or foreign file: read again, not trusted
    reads = _fresh_process(monkeypatch)
    assert load_mod.load_cached(data, "x").alarms and len(reads) == 1


def _gate_project(dest: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A copy of the project (its code too: the plan's key holds it), the disk cache on, no report."""
    for name in ("docs", "macros", "runbook_data", "runbook"):
        shutil.copytree(ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "mkdocs.yml", dest / "mkdocs.yml")
    monkeypatch.setenv("RUNBOOK_CATALOG_CACHE", "1")
    monkeypatch.delenv("RUNBOOK_REPORT", raising=False)


def test_the_gate_builds_again_only_when_an_input_changed(tmp_path: Path, monkeypatch) -> None:
    """The gate's rendered blocks are kept: a re-run with nothing changed does not build the site."""
    from runbook.gate import run as gate
    from runbook.site import build

    _gate_project(tmp_path, monkeypatch)
    builds: list[Path] = []
    real = build.start

    def counted(mkdocs_yml, out, **kw):  # type: ignore[no-untyped-def]
        builds.append(out)
        return real(mkdocs_yml, out, **kw)

    monkeypatch.setattr(build, "start", counted)

    def blocks() -> list[tuple[str, int, str, str]]:
        p = gate.plan(tmp_path / "mkdocs.yml")
        try:
            return [(s.page, s.line, s.env, s.text) for s in p.snippets]
        finally:
            p.close()

    first = blocks()
    assert blocks() == first and len(builds) == 1  # the same blocks, not built again
    page = tmp_path / "docs" / "debugging.md"
    page.write_text(page.read_text(encoding="utf-8") + "\n```bash\naws sqs list-queues\n```\n", encoding="utf-8")
    edited = blocks()
    assert len(builds) == 2 and len(edited) == len(first) + 1  # the new block (a page of docs: one env)
    report = tmp_path / "r.json"
    report.write_text('{"meta": {}, "results": [], "summary": {}}', encoding="utf-8")
    monkeypatch.setenv("RUNBOOK_REPORT", str(report))  # what the pages show changes with it
    assert blocks() == edited and len(builds) == 3


def test_a_load_after_one_edit_parses_only_that_file_and_bash_checks_only_its_commands(
        data: Path, monkeypatch) -> None:
    from runbook.data import shell_check, yaml_reader

    load_mod.load_cached(data)  # every file parsed and every command checked once, kept on disk
    parsed: list[str] = []
    checked: list[str] = []
    real_parse, real_bash = yaml_reader._parse, shell_check.syntax_errors
    monkeypatch.setattr(yaml_reader, "_parse", lambda raw, shown: parsed.append(shown) or real_parse(raw, shown))
    monkeypatch.setattr(shell_check, "syntax_errors",
                        lambda bash, script: checked.append(script) or real_bash(bash, script))
    monkeypatch.setattr(yaml_reader, "_PARSED", {})  # a new process
    path = data / "alarms" / "sqs.yaml"
    text = path.read_text(encoding="utf-8")
    assert "--max-number-of-messages 10" in text
    path.write_text(text.replace("--max-number-of-messages 10", "--max-number-of-messages 9"), encoding="utf-8")
    monkeypatch.setattr(load_mod, "_CACHE", {})
    cat = load_mod.load_cached(data)
    assert parsed == [load_mod.shown_path(path)]
    assert checked and all("--max-number-of-messages 9" in script for script in checked)
    assert any("--max-number-of-messages 9" in (c.shell or "") for c in cat.commands())
    # A syntax error in a kept text is still found (the answer is kept, not only passes).
    path.write_text(text.replace("--max-number-of-messages 10", "--max-number-of-messages 'x"), encoding="utf-8")
    for _ in range(2):  # found afresh, then from what was kept
        monkeypatch.setattr(load_mod, "_CACHE", {})
        monkeypatch.setattr(yaml_reader, "_PARSED", {})
        with pytest.raises(RunbookError, match="not valid bash"):
            load_mod.load_cached(data)
    # The memo holds the texts of the catalog it was written for, not every text ever checked.
    [memo] = (data.parent / ".cache" / "bash-n").glob("*.pickle")
    assert len(disk_cache.read(memo)) <= sum(1 for c in cat.commands() if c.shell) * len(cat.environments)


def test_the_gate_sandbox_reads_the_kept_catalog_file(data: Path, monkeypatch) -> None:
    catalog = load_mod.load_cached(data)
    kept = load_mod.kept_file(data)
    assert kept and Path(kept).parent == disk_cache.folder(data)
    assert Path(kept).stat().st_mode & 0o044 == 0o044  # the sandbox's user (nobody) reads it
    reads = _fresh_process(monkeypatch)
    again = load_mod.load_kept(data, kept)
    assert reads == [] and [a.id for a in again.alarms] == [a.id for a in catalog.alarms]
    # A file that is not a kept catalog: the data is loaded instead (here: kept by load_cached).
    other = data.parent / "other.pickle"
    other.write_bytes(b"not a pickle")
    assert [a.id for a in load_mod.load_kept(data, str(other)).alarms] == [a.id for a in catalog.alarms]
    monkeypatch.setenv("RUNBOOK_CATALOG_CACHE", "0")
    monkeypatch.setattr(load_mod, "_CACHE", {})
    assert [a.id for a in load_mod.load_kept(data, str(other)).alarms] == [a.id for a in catalog.alarms]
    assert len(reads) == 1


def test_the_plan_says_when_it_builds_and_hands_over_the_catalog(tmp_path: Path, monkeypatch) -> None:
    """on_build (the gate's early lanes) comes only when the site is built, with the catalog."""
    from concurrent.futures import Future

    from runbook.gate import run as gate

    _gate_project(tmp_path, monkeypatch)
    calls: list[tuple[Path, str, Future]] = []

    def plan() -> gate.Plan:
        return gate.plan(tmp_path / "mkdocs.yml", on_build=lambda *args: calls.append(args))

    first = plan()
    first.close()
    [(root, site_url, loaded)] = calls
    assert root == tmp_path / "runbook_data" and site_url == first.site_url
    assert loaded.result(timeout=0) is first.catalog
    plan().close()
    assert len(calls) == 1  # kept: nothing is built, no lane is started early
    (tmp_path / "runbook_data" / "alarms" / "sqs.yaml").write_text("alarms: [", encoding="utf-8")
    with pytest.raises(RunbookError):
        plan()
    assert len(calls) == 2 and isinstance(calls[1][2].exception(timeout=0), RunbookError)
