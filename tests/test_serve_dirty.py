"""`make serve` (mkdocs serve --dirty): an edit of one alarm rebuilds that alarm's page, and the
site it leaves is the site a clean build makes of the same data, search index included."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import copy_project

# What mkdocs serve does on each edit (config loaded afresh, a dirty build into the same
# folder), then a clean build of the same data into another folder, all in one process.
SEQUENCE = r"""
import json, logging, os, sys
from pathlib import Path
from mkdocs.config import load_config
from mkdocs.commands.build import build

URL = "http://127.0.0.1:8000/"
said = []
class Keep(logging.Handler):
    def emit(self, record):
        said.append(record.getMessage())
logging.getLogger("mkdocs").addHandler(Keep(level=logging.INFO))
logging.getLogger("mkdocs").setLevel(logging.INFO)

def go(site, dirty):
    config = load_config("mkdocs.yml", site_dir=site)
    config.site_url = URL
    build(config, serve_url=URL, dirty=dirty)
    return {str(p.relative_to(site)): p.stat().st_mtime_ns for p in Path(site).rglob("*.html")}

data = Path("runbook_data/alarms/api-gateway.yaml")
first = go("dirty", True)
data.write_text(data.read_text().replace("summary: API Gateway is returning 5xx server errors.",
                                         "summary: API Gateway is returning 5xx server errors (edited).", 1))
second = go("dirty", True)
go("clean", False)
print(json.dumps({"first": first, "second": second, "said": said}))
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    project = copy_project(tmp_path_factory.mktemp("dirty") / "project")
    done = subprocess.run([sys.executable, "-c", SEQUENCE], cwd=project, capture_output=True, text=True,
                          timeout=600, env={"PATH": "/usr/bin:/bin", "NO_MKDOCS_2_WARNING": "1",
                                            "PYTHONPATH": str(project)})
    assert done.returncode == 0, done.stderr[-3000:]
    return project, json.loads(done.stdout.strip().splitlines()[-1])


def test_an_edit_of_one_alarm_rebuilds_only_that_alarm_page(served) -> None:
    project, out = served
    first, second = out["first"], out["second"]
    alarms = {p for p in first if p.startswith("alarms/") and p != "alarms/index.html"
              and p.count("/") == 2 and (project / "dirty" / p).read_text().count("rb-env-switch")}
    assert len(alarms) >= 12
    changed = {p for p in alarms if second[p] != first[p]}
    assert changed == {"alarms/api-5xx/index.html"}
    assert "(edited)" in (project / "dirty" / "alarms/api-5xx/index.html").read_text()
    # Hand-written pages read the data through macros: each dirty build rebuilds them.
    assert second["status/index.html"] != first["status/index.html"]
    assert any("dirty build: 1 of" in line for line in out["said"]), out["said"][-5:]
    # mkdocs' generic dirty-build warning is gone, so --strict (mkdocs.yml) does not abort.
    assert not any("'dirty' build is being performed" in line for line in out["said"])


def test_the_dirty_site_is_the_clean_site(served) -> None:
    project, _ = served
    dirty, clean = project / "dirty", project / "clean"
    files = sorted(str(p.relative_to(clean)) for p in clean.rglob("*") if p.is_file())
    assert files == sorted(str(p.relative_to(dirty)) for p in dirty.rglob("*") if p.is_file())
    index = Path("search/search_index.json")
    differ = [f for f in files if Path(f) != index and (clean / f).read_bytes() != (dirty / f).read_bytes()]
    assert differ == []

    def entries(site: Path) -> list[str]:
        return sorted(json.dumps(d, sort_keys=True) for d in json.loads((site / index).read_text())["docs"])

    # The pages the last build skipped keep their search entries (from the build before).
    assert entries(dirty) == entries(clean)
    assert any('"location": "alarms/lambda-errors/"' in e for e in entries(dirty))


def test_after_a_failed_build_the_next_one_checks_every_file(tmp_path: Path, monkeypatch) -> None:
    from runbook.data.load import load_cached
    from runbook.site import incremental

    monkeypatch.setattr(incremental, "_last_succeeded", False)
    cat = load_cached(Path(__file__).resolve().parent.parent / "runbook_data")

    def dirty_build() -> incremental.DirtyBuild:
        b = incremental.DirtyBuild(cat, "key", str(tmp_path))
        b.pending["x"] = "digest"  # mkdocs asked is_modified(): a dirty build
        return b

    first = dirty_build()
    assert first.written_since() is None  # nothing checked before it: the whole site
    first.committed()
    second = dirty_build()
    since = second.written_since()
    assert since is not None and since <= second.started  # what it writes, after a good build
    third = dirty_build()  # the second never succeeded (the secret scan or a page failed)
    assert third.written_since() is None
    clean = incremental.DirtyBuild(cat, "key", str(tmp_path))  # is_modified() never asked
    assert clean.written_since() is None
