"""Load runbook_data/ into a validated Catalog, or raise RunbookError with every problem found."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from runbook.data import disk_cache, rules, secrets
from runbook.data.model import (
    Alarm,
    AlarmGroupFile,
    Catalog,
    EnvironmentsFile,
    EscalationFile,
    InputsFile,
    InventoryFile,
    PageFile,
)
from runbook.data.yaml_reader import MAX_DATA_BYTES, MAX_FILE_BYTES, PathKey, Source, read
from runbook.errors import Loc, Problem, RunbookError, shown_path

M = TypeVar("M", bound=BaseModel)

DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "runbook_data"


# ------------------------------------------------------------------ pydantic errors → located lines


def _data_path(source: Source, pyd_loc: tuple[Any, ...]) -> PathKey:
    """Drop union tags from a pydantic error location so it addresses the YAML data."""
    node: Any = source.data
    path: list[str | int] = []
    for part in pyd_loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        elif isinstance(node, dict) and isinstance(part, str) and part[:1].isupper():
            continue  # a Tag of a union, not a key
        else:
            path.append(part)
            break
        path.append(part)
    return tuple(path)


def _message(err: Any, path: PathKey) -> str:
    kind = err["type"]
    name = next((str(p) for p in reversed(path) if isinstance(p, str)), "value")
    got = err.get("input")
    if kind == "missing":
        return f"missing required key '{err['loc'][-1]}'"
    if kind == "extra_forbidden":
        return f"unknown key '{path[-1]}'"
    if kind == "literal_error":
        return f"{name}: invalid value {got!r}, expected {err['ctx']['expected']}"
    if kind == "string_pattern_mismatch":
        return f"{name}: {got!r} does not match the pattern {err['ctx']['pattern']}"
    if kind == "block_kind":
        return str(err["msg"])
    if isinstance(got, dict):
        got = "a mapping"
    elif isinstance(got, list):
        got = "a list"
    else:
        got = repr(got)
    msg = err["msg"][0].lower() + err["msg"][1:]
    return f"{name}: {msg}, got {got}"


def _validate(model: type[M], source: Source) -> tuple[M | None, list[Problem]]:
    try:
        return model.model_validate(source.data), []
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            path = _data_path(source, err["loc"])
            key = err["type"] == "extra_forbidden"
            problems.append(Problem(source.loc(path, key=key), _message(err, path)))
        return None, problems


# ------------------------------------------------------------------ the loader


class _Loader:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.problems: list[Problem] = []
        self.sources: dict[str, Source] = {}
        # Ids of alarms whose own definition failed to validate: cross-checks do not report
        # references to them (the schema error already says what is wrong).
        self.broken_alarms: set[str] = set()

    def one(self, model: type[M], path: Path, required: bool = True) -> M | None:
        if not path.exists():
            if required:
                self.problems.append(Problem(Loc(shown_path(path)), "required file is missing"))
            return None
        source, problems = read(path, shown_path(path), keep_in=self.root)
        self.problems += problems
        if source is None:
            return None
        self.sources[source.file] = source
        obj, problems = _validate(model, source)
        self.problems += problems
        if obj is None and model is AlarmGroupFile:
            return self._salvage_group(source)  # type: ignore[return-value]
        return obj

    def _salvage_group(self, source: Source) -> AlarmGroupFile | None:
        """The alarms of a group file that are valid on their own, so the other files' checks still see them."""
        data = source.data
        items = data.get("alarms") if isinstance(data, dict) else None
        if not isinstance(items, list):
            return None
        good: list[Alarm] = []
        for item in items:
            try:
                good.append(Alarm.model_validate(item))
            except ValidationError:
                if isinstance(item, dict) and isinstance(item.get("id"), str):
                    self.broken_alarms.add(item["id"])
        try:
            return AlarmGroupFile.model_validate({**data, "alarms": good})
        except ValidationError:
            self.broken_alarms.update(a.id for a in good)
            return None

    def many(self, model: type[M], folder: Path) -> list[M]:
        files = sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml"))
        return [obj for p in files if (obj := self.one(model, p)) is not None]


def _data_files(root: Path) -> list[Path]:
    """The files `load` reads, in its order."""
    top = [root / f"{name}.yaml" for name in ("environments", "inventory", "inputs", "escalation")]
    folders = [sorted((root / d).glob("*.yaml")) + sorted((root / d).glob("*.yml")) for d in ("alarms", "procedures")]
    return [p for p in top if p.exists()] + [p for files in folders for p in files]


def _over_budget(root: Path) -> Problem | None:
    """The file where the data files' sizes (each within its own bound) pass MAX_DATA_BYTES."""
    total = 0
    for path in _data_files(root):
        size = path.stat().st_size
        total += size if size <= MAX_FILE_BYTES else 0  # a bigger one is refused unread on its own
        if total > MAX_DATA_BYTES:
            return Problem(Loc(shown_path(path)), (
                f"not read: the data files hold more than {MAX_DATA_BYTES // 1024 // 1024} MiB "
                "together, the most `runbook check` reads; nothing was read"))
    return None


def load(root: Path | str | None = None, site_url: str | None = None) -> Catalog:
    """Read and validate all of runbook_data/; raise RunbookError listing every problem.

    `site_url` (mkdocs.yml's) is what alarm descriptions link to: their length is checked with it.
    """
    root = Path(root) if root else DEFAULT_ROOT
    over = _over_budget(root)
    if over is not None:  # refused unread, like a file over its own bound: parsing it all is the cost
        raise RunbookError([over])
    ld = _Loader(root)
    envs = ld.one(EnvironmentsFile, root / "environments.yaml")
    inv = ld.one(InventoryFile, root / "inventory.yaml")
    inputs = ld.one(InputsFile, root / "inputs.yaml")
    esc = ld.one(EscalationFile, root / "escalation.yaml")
    groups = ld.many(AlarmGroupFile, root / "alarms")
    pages = ld.many(PageFile, root / "procedures")
    # No secrets, in any YAML file under root (parsed or not), nor literal account ids and hosts.
    ld.problems += secrets.scan_data(root)
    if envs is not None:
        declared_in = shown_path(root / "environments.yaml")
        ld.problems += secrets.literal_values(envs.environments, ld.sources.values(), declared_in)
    if not groups and not any(p.loc.file.endswith(("alarms", "alarms/")) for p in ld.problems):
        if not (root / "alarms").is_dir() or not any((root / "alarms").glob("*.y*ml")):
            ld.problems.append(Problem(Loc(shown_path(root / "alarms")), "no alarm files found"))
    if envs is None or inv is None or inputs is None or esc is None:
        raise RunbookError(ld.problems)
    catalog = Catalog(
        root=root,
        environments=envs.environments,
        resources=inv.resources,
        inputs=inputs.inputs,
        groups=sorted(groups, key=lambda g: (g.order, g.group)),
        pages=sorted(pages, key=lambda p: (p.order, p.page)),
        escalation=esc,
    )
    ld.problems += rules.cross_check(catalog, ld.sources, ld.broken_alarms, site_url)
    if ld.problems:
        raise RunbookError(ld.problems)
    return catalog


_CACHE: dict[Path, tuple[tuple[tuple[str, float], ...], str | None, Catalog]] = {}


def load_cached(root: Path | str | None = None, site_url: str | None = None) -> Catalog:
    """`load`, reused while no file under root changed (the site build asks several times), and
    kept on disk between processes (:mod:`runbook.data.disk_cache`).

    Without `site_url`, a catalog loaded with any site_url serves.
    """
    root = Path(root) if root else DEFAULT_ROOT
    stamp = tuple(sorted((str(p), p.stat().st_mtime) for p in root.rglob("*.y*ml")))
    hit = _CACHE.get(root)
    if hit and hit[0] == stamp and (site_url is None or hit[1] == site_url):
        return hit[2]
    catalog = _load_kept(root, site_url)
    _CACHE[root] = (stamp, site_url, catalog)
    return catalog


# The disk cache's file of the catalog last loaded from each data folder (kept_file).
_KEPT_FILES: dict[Path, Path] = {}


def _load_kept(root: Path, site_url: str | None) -> Catalog:
    """`load`, or the catalog the disk cache kept for exactly these files and this code."""
    if not disk_cache.enabled() or _over_budget(root) is not None:
        return load(root, site_url)
    digest = disk_cache.key(root, site_url)
    kept = disk_cache.get(root, digest)
    if not isinstance(kept, Catalog):
        kept = load(root, site_url)  # raises on any problem: nothing is kept then
        disk_cache.put(root, digest, kept)
    _KEPT_FILES[root.resolve()] = disk_cache.entry(root, digest)
    return kept


def kept_file(root: Path | str) -> str:
    """The file the disk cache keeps the catalog `load_cached` last gave for `root` in ("" if
    none): the gate's sandbox, which sees the data but not the project, reads it from there
    (`load_kept`) instead of loading the data again."""
    path = _KEPT_FILES.get(Path(root).resolve())
    return str(path) if path is not None and path.exists() else ""


_READ_KEPT: dict[str, Catalog] = {}


def load_kept(root: Path | str, kept: str = "") -> Catalog:
    """The catalog in `kept` (a `kept_file` of root, whose name is its digest: read once per
    process), else `load_cached(root)`."""
    catalog = _READ_KEPT.get(kept) or (disk_cache.read(Path(kept)) if kept else None)
    if not isinstance(catalog, Catalog):
        return load_cached(root)
    _READ_KEPT[kept] = catalog
    return catalog
