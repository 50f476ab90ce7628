"""Load runbook_data/ into a validated Catalog, or raise RunbookError with every problem found."""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from runbook.data import placeholders
from runbook.data.model import (
    SEVERITIES,
    Alarm,
    AlarmGroupFile,
    Command,
    Environment,
    EnvironmentsFile,
    EscalationFile,
    InputsFile,
    InventoryFile,
    OperatorInput,
    PageFile,
    Resource,
)
from runbook.data.yaml_reader import LOC_KEY, PathKey, Source, read
from runbook.errors import Loc, Problem, RunbookError

M = TypeVar("M", bound=BaseModel)

DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "runbook_data"


@dataclass
class Catalog:
    """Everything the pages, the alarm export and the gate's world are made from."""

    root: Path
    environments: list[Environment]
    resources: dict[str, Resource]
    inputs: dict[str, OperatorInput]
    groups: list[AlarmGroupFile]
    pages: list[PageFile]
    escalation: EscalationFile
    _scopes: dict[str, dict[str, str]] = field(default_factory=dict, repr=False)

    @property
    def alarms(self) -> list[Alarm]:
        return [a for g in self.groups for a in g.alarms]

    def alarm(self, alarm_id: str) -> Alarm:
        for a in self.alarms:
            if a.id == alarm_id:
                return a
        raise KeyError(alarm_id)

    def group_of(self, alarm_id: str) -> AlarmGroupFile:
        return next(g for g in self.groups if any(a.id == alarm_id for a in g.alarms))

    def env(self, name: str) -> Environment:
        for e in self.environments:
            if e.name == name:
                return e
        raise KeyError(name)

    def page(self, page_id: str) -> PageFile:
        return next(p for p in self.pages if p.page == page_id)

    @property
    def default_env(self) -> Environment:
        return self.environments[0]

    def scope(self, env: str) -> dict[str, str]:
        """Placeholder values for one environment (cached)."""
        if env not in self._scopes:
            self._scopes[env] = placeholders.env_scope(self, self.env(env))
        return self._scopes[env]

    def commands(self) -> list[Command]:
        return [c for c in _walk(self.groups + self.pages) if isinstance(c, Command)]


def _walk(nodes: Any) -> Any:
    if isinstance(nodes, BaseModel):
        yield nodes
        for name in type(nodes).model_fields:
            yield from _walk(getattr(nodes, name))
    elif isinstance(nodes, list | tuple):
        for n in nodes:
            yield from _walk(n)
    elif isinstance(nodes, dict):
        for n in nodes.values():
            yield from _walk(n)


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
        return err["msg"]
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

    def shown(self, path: Path) -> str:
        try:
            return os.path.relpath(path, Path.cwd())
        except ValueError:
            return str(path)

    def one(self, model: type[M], path: Path, required: bool = True) -> M | None:
        if not path.exists():
            if required:
                self.problems.append(Problem(Loc(self.shown(path)), "required file is missing"))
            return None
        source, problems = read(path, self.shown(path))
        self.problems += problems
        if source is None:
            return None
        self.sources[source.file] = source
        obj, problems = _validate(model, source)
        self.problems += problems
        return obj

    def many(self, model: type[M], folder: Path) -> list[M]:
        files = sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml"))
        return [obj for p in files if (obj := self.one(model, p)) is not None]


def load(root: Path | str | None = None) -> Catalog:
    """Read and validate all of runbook_data/; raise RunbookError listing every problem."""
    root = Path(root) if root else DEFAULT_ROOT
    ld = _Loader(root)
    envs = ld.one(EnvironmentsFile, root / "environments.yaml")
    inv = ld.one(InventoryFile, root / "inventory.yaml")
    inputs = ld.one(InputsFile, root / "inputs.yaml")
    esc = ld.one(EscalationFile, root / "escalation.yaml")
    groups = ld.many(AlarmGroupFile, root / "alarms")
    pages = ld.many(PageFile, root / "procedures")
    if not groups and not any(p.loc.file.endswith(("alarms", "alarms/")) for p in ld.problems):
        if not (root / "alarms").is_dir() or not any((root / "alarms").glob("*.y*ml")):
            ld.problems.append(Problem(Loc(ld.shown(root / "alarms")), "no alarm files found"))
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
    ld.problems += _cross_check(catalog, ld.sources)
    if ld.problems:
        raise RunbookError(ld.problems)
    return catalog


# ------------------------------------------------------------------ cross references


def _suggest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _strings(data: Any, path: PathKey = ()) -> Any:
    """Every string value in plain YAML data with its path."""
    if isinstance(data, dict):
        for k, v in data.items():
            if k != LOC_KEY:
                yield from _strings(v, (*path, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _strings(v, (*path, i))
    elif isinstance(data, str):
        yield path, data


def _cross_check(cat: Catalog, sources: dict[str, Source]) -> list[Problem]:
    problems: list[Problem] = []

    def at(node: Any) -> Loc:
        return node.loc or Loc("runbook_data")

    # Environments: unique names, the same value keys everywhere.
    seen_env: dict[str, Environment] = {}
    for e in cat.environments:
        if e.name in seen_env:
            problems.append(Problem(at(e), f"duplicate environment '{e.name}'"))
        seen_env[e.name] = e
    all_keys = sorted({k for e in cat.environments for k in e.values})
    for e in cat.environments:
        for k in all_keys:
            if k not in e.values:
                other = next(o.name for o in cat.environments if k in o.values)
                problems.append(
                    Problem(at(e), f"environment '{e.name}' lacks value '{k}' that '{other}' declares")
                )
        for sev in SEVERITIES:
            if sev not in e.alarm_topics:
                problems.append(Problem(at(e), f"environment '{e.name}' has no alarm topic for '{sev}'"))

    # Names: environment placeholders and operator inputs share one namespace.
    env_names = set(placeholders.BUILTINS) | set(all_keys)
    for rname, res in cat.resources.items():
        env_names.add(rname)
        env_names.add(f"{rname}.name")
        env_names.update(f"{rname}.{a}" for a in placeholders.RESOURCE_ATTRS[res.type])
    for name in cat.inputs:
        if name in env_names:
            problems.append(Problem(at(cat.inputs[name]), f"operator input '{name}' shadows a value"))
    known = sorted(env_names | set(cat.inputs))
    deployed = placeholders.deploy_names(cat)
    for source in sources.values():
        for path, text in _strings(source.data):
            for m in placeholders.find(text):
                name = m.group(1)
                if name in deployed and "dimensions" not in path:
                    problems.append(
                        Problem(
                            source.text_loc(path, m.start()),
                            f"'{{{name}}}' is assigned by AWS at deploy time: only alarm dimensions may use it "
                            f"(commands look it up by name, e.g. with get-apis)",
                        )
                    )
                elif name not in env_names and name not in cat.inputs and name not in deployed:
                    problems.append(
                        Problem(
                            source.text_loc(path, m.start()),
                            f"unknown placeholder '{{{name}}}'{_suggest(name, known)}",
                        )
                    )
    numeric = {k for k in all_keys if all(isinstance(e.values.get(k), int | float) for e in cat.environments)}
    for res in cat.resources.values():
        for m in placeholders.find(res.name):
            if m.group(1) not in set(placeholders.BUILTINS) | set(all_keys):
                problems.append(Problem(at(res), f"resource name may only use environment values: {res.name}"))

    # Alarms: unique ids and names, known related alarms, a well-formed metric.
    ids: dict[str, Alarm] = {}
    for a in cat.alarms:
        for key in (a.id, *a.aliases):
            if key in ids:
                first = ids[key]
                problems.append(Problem(at(a), f"duplicate alarm id '{key}' (first defined at {at(first)})"))
            else:
                ids[key] = a
        if "{env}" not in a.name:
            problems.append(Problem(at(a), f"alarm name '{a.name}' must contain {{env}}"))
    for a in cat.alarms:
        for i, rel in enumerate(a.related):
            if rel not in ids or rel in ids[rel].aliases:
                problems.append(
                    Problem(
                        a.loc_of("related", i) or at(a),
                        f"related alarm '{rel}' does not exist{_suggest(rel, sorted(ids))}",
                    )
                )
        problems += _check_metric(a, numeric)

    # Commands: exactly one language.
    for cmd in cat.commands():
        if (cmd.shell is None) == (cmd.python is None):
            problems.append(Problem(at(cmd), "a command needs exactly one of 'shell' or 'python'"))
        for i, env_name in enumerate(cmd.only):
            if env_name not in seen_env:
                hint = _suggest(env_name, sorted(seen_env))
                problems.append(Problem(cmd.loc_of("only", i) or at(cmd), f"unknown environment '{env_name}'{hint}"))
        if cmd.skip and cmd.xfail:
            problems.append(Problem(at(cmd), "a command cannot be both 'skip' and 'xfail'"))

    # Pages and escalation.
    page_ids: dict[str, PageFile] = {}
    for p in cat.pages:
        if p.page in page_ids or p.page == "alarms":
            problems.append(Problem(at(p), f"duplicate page '{p.page}'"))
        page_ids[p.page] = p
    levels = {lvl.severity for lvl in cat.escalation.severity_levels}
    for sev in SEVERITIES:
        if sev not in levels:
            problems.append(Problem(at(cat.escalation), f"severity '{sev}' has no escalation level"))
    return problems


def _check_metric(a: Alarm, numeric: set[str]) -> list[Problem]:
    problems = []
    loc = a.loc or Loc("runbook_data")
    if (a.metric is None) == (not a.metrics):
        problems.append(Problem(loc, f"alarm '{a.id}' needs exactly one of 'metric' or 'metrics'"))
    metrics = [a.metric] if a.metric else [q.metric for q in a.metrics if q.metric]
    for m in metrics:
        if m is not None and (m.statistic is None) == (m.extended_statistic is None):
            problems.append(
                Problem(m.loc or loc, "a metric needs exactly one of 'statistic' or 'extended_statistic'")
            )
    if a.metrics:
        returned = [q for q in a.metrics if q.return_data]
        if len(returned) != 1:
            problems.append(Problem(loc, f"alarm '{a.id}': exactly one metric query must have return_data"))
        for q in a.metrics:
            if (q.metric is None) == (q.expression is None):
                problems.append(
                    Problem(q.loc or loc, "a metric query needs exactly one of 'metric' or 'expression'")
                )
    if isinstance(a.threshold, str):
        name = a.threshold.strip("{}")
        if name not in numeric:
            problems.append(
                Problem(loc, f"threshold '{a.threshold}' must name a numeric value of every environment")
            )
    return problems


_CACHE: dict[Path, tuple[tuple[tuple[str, float], ...], Catalog]] = {}


def load_cached(root: Path | str | None = None) -> Catalog:
    """`load`, reused while no file under root changed (the site build asks several times)."""
    root = Path(root) if root else DEFAULT_ROOT
    stamp = tuple(sorted((str(p), p.stat().st_mtime) for p in root.rglob("*.y*ml")))
    hit = _CACHE.get(root)
    if hit and hit[0] == stamp:
        return hit[1]
    catalog = load(root)
    _CACHE[root] = (stamp, catalog)
    return catalog
