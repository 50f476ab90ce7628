"""macros/site_hooks.py on a tiny MkDocs project (tmp dir): the nav expansion and one stub page per alarm."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from mkdocs.config import load_config
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files, InclusionLevel

from runbook.data.load import load_cached

ROOT = Path(__file__).resolve().parent.parent
SPEC = importlib.util.spec_from_file_location("site_hooks_under_test", ROOT / "macros" / "site_hooks.py")
assert SPEC is not None and SPEC.loader is not None
hooks = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(hooks)

MKDOCS_YML = f"""\
site_name: Hooks test
hooks:
  - {ROOT / "macros" / "site_hooks.py"}
nav:
  - Home: index.md
  - Alarms: alarms/index.md
  - Other: other.md
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "docs" / "alarms").mkdir(parents=True)
    for page in ("index.md", "alarms/index.md", "other.md"):
        (tmp_path / "docs" / page).write_text("# page\n", encoding="utf-8")
    (tmp_path / "runbook_data").symlink_to(ROOT / "runbook_data")
    (tmp_path / "mkdocs.yml").write_text(MKDOCS_YML, encoding="utf-8")
    return tmp_path


def _config(project: Path):
    return load_config(str(project / "mkdocs.yml"))


def test_on_config_expands_the_alarms_entry_into_groups_of_alarm_pages(project: Path) -> None:
    cat = load_cached(ROOT / "runbook_data")
    config = hooks.on_config(_config(project))
    expected_alarms = [{"All alarms": "alarms/index.md"}] + [
        {g.title: [{a.title: f"alarms/{a.id}.md"} for a in g.alarms]} for g in cat.groups
    ]
    assert config.nav == [{"Home": "index.md"}, {"Alarms": expected_alarms}, {"Other": "other.md"}]


def test_past_the_bound_the_nav_lists_the_index_and_alarm_pages_stay_out_of_it(project: Path, monkeypatch) -> None:
    """The nav is in every page: listing every alarm made the site grow as pages x alarms."""
    cat = load_cached(ROOT / "runbook_data")
    config = _config(project)
    # The hooks module mkdocs loaded for this config (each load is a module of its own).
    loaded = next(m for m in config.plugins.values() if getattr(m, "NAV_ALARMS", None) is not None)
    monkeypatch.setattr(loaded, "NAV_ALARMS", len(cat.alarms) - 1)
    config = config.plugins.on_config(config)
    assert config.nav == [{"Home": "index.md"}, {"Alarms": [{"All alarms": "alarms/index.md"}]},
                          {"Other": "other.md"}]
    files = config.plugins.on_files(Files([]), config=config)
    assert {f.src_uri for f in files} == {f"alarms/{a.id}.md" for a in cat.alarms}
    # Out of the nav, yet no "not included in the nav" warning, which fails a strict build.
    assert {f.inclusion for f in files} == {InclusionLevel.NOT_IN_NAV}
    monkeypatch.setattr(loaded, "NAV_ALARMS", len(cat.alarms))  # at the bound: each alarm listed
    assert {f.inclusion for f in config.plugins.on_files(Files([]), config=config)} == {InclusionLevel.UNDEFINED}
    assert len(hooks.on_config(_config(project)).nav[1]["Alarms"]) == 1 + len(cat.groups)


def test_on_config_leaves_a_nav_without_the_alarms_entry_alone(project: Path) -> None:
    (project / "mkdocs.yml").write_text("site_name: x\nnav:\n  - Home: index.md\n", encoding="utf-8")
    assert hooks.on_config(_config(project)).nav == [{"Home": "index.md"}]


def test_on_files_adds_one_stub_per_alarm_unless_the_page_exists(project: Path) -> None:
    cat = load_cached(ROOT / "runbook_data")
    config = _config(project)
    first = cat.alarms[0]
    (project / "docs" / "alarms" / f"{first.id}.md").write_text("# by hand\n", encoding="utf-8")
    own = [File(p, str(project / "docs"), str(project / "site"), True)
           for p in ("index.md", "alarms/index.md", "other.md", f"alarms/{first.id}.md")]
    # Dispatched by MkDocs itself, as in a build (the project's `hooks:` names the module).
    files = config.plugins.on_files(Files(own), config=config)
    added = {f.src_uri: f for f in files if f not in own}
    assert sorted(added) == sorted(f"alarms/{a.id}.md" for a in cat.alarms[1:])
    by_hand = files.get_file_from_path(f"alarms/{first.id}.md")
    assert by_hand is own[3]  # a page written by hand is kept, not replaced by a stub
    a = cat.alarms[1]
    assert added[f"alarms/{a.id}.md"].content_string == (
        f"---\ntitle: {a.title}\nalarm: {a.id}\nsearch:\n  boost: 3\n"
        f"description: \"{a.summary.replace(chr(34), '')}\"\n---\n\n"
        f"# {a.title} (`{a.id}`)\n\n"
        f'{{{{ alarm_page("{a.id}") }}}}\n'
    )


def test_invalid_data_stops_the_build_with_the_check_lines(project: Path, tmp_path_factory) -> None:
    data = tmp_path_factory.mktemp("data") / "runbook_data"
    data.mkdir()
    (project / "runbook_data").unlink()
    (project / "runbook_data").symlink_to(data)
    with pytest.raises(PluginError) as exc:
        hooks.on_config(_config(project))
    shown = str(data)  # outside the working directory: shown absolute, symlinks resolved
    assert str(exc.value) == (
        "runbook data is invalid:\n"
        f"{shown}/alarms:1:1: no alarm files found\n"
        + "\n".join(f"{shown}/{f}.yaml:1:1: required file is missing"
                    for f in ("environments", "escalation", "inputs", "inventory"))
    )
