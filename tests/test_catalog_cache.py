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


def test_the_gate_builds_again_only_when_an_input_changed(tmp_path: Path, monkeypatch) -> None:
    """The gate's rendered blocks are kept: a re-run with nothing changed does not build the site."""
    from runbook.gate import run as gate
    from runbook.site import build

    for name in ("docs", "macros", "runbook_data", "runbook"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    monkeypatch.setenv("RUNBOOK_CATALOG_CACHE", "1")
    monkeypatch.delenv("RUNBOOK_REPORT", raising=False)
    builds: list[Path] = []
    real = build.build

    def counted(mkdocs_yml, out, **kw):  # type: ignore[no-untyped-def]
        builds.append(out)
        return real(mkdocs_yml, out, **kw)

    monkeypatch.setattr(build, "build", counted)

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
