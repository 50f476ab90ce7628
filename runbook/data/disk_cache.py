"""Work kept on disk, keyed by everything that decides it: the validated catalog, and the
gate's rendered blocks (:func:`runbook.gate.run.plan`).

Reading and checking runbook_data/ is most of `runbook check`, a large part of every build, and
each `mkdocs serve` rebuild (ruamel's parser is pure Python). A catalog that passed every check is
kept under ``<project>/.cache/catalog/``, keyed by a digest of:

- every file under the data folder (names and bytes) and the folder as errors name it;
- the site_url it was checked with;
- the code that reads and checks it (every module of the ``runbook`` package) and the versions
  of the libraries its checks use.

A data folder with problems is never kept: its errors are always found afresh. Set
``RUNBOOK_CATALOG_CACHE=0`` to read everything every time. Failing to read or write the cache
(a read-only checkout, the gate's sandbox) only costs the time it would have saved.

The gate's rendered blocks are kept the same way under ``.cache/plan/``, keyed by the project's
mkdocs.yml, docs, macros, data and code, the report the build shows (``RUNBOOK_REPORT``) and the
versions of mkdocs and its plugins: a re-run with nothing changed does not build the site again.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

from runbook.errors import shown_path

PACKAGE = Path(__file__).resolve().parents[1]  # runbook/
LIBRARIES = ("pydantic", "pydantic-core", "ruamel.yaml", "policy-sentry", "botocore", "jmespath", "regex",
             "detect-secrets", "mkdocs", "mkdocs-material", "mkdocs-macros-plugin", "pymdown-extensions",
             "markdown", "pygments", "jinja2")
KEPT = 8  # entries kept per kind and project (a branch switch back finds its own)

_code_digest: str | None = None


def _code() -> str:
    """The checking code and its libraries, hashed once per process."""
    global _code_digest
    if _code_digest is None:
        h = hashlib.sha256(sys.version.encode())
        for path in sorted(PACKAGE.rglob("*.py")):
            h.update(path.relative_to(PACKAGE).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
        for name in LIBRARIES:
            try:
                h.update(f"{name}={metadata.version(name)}\0".encode())
            except metadata.PackageNotFoundError:
                h.update(f"{name}=none\0".encode())
        shellcheck = shutil.which("shellcheck")
        if shellcheck:  # the data's shell blocks are checked with it
            st = os.stat(shellcheck)
            h.update(f"shellcheck={st.st_size}:{st.st_mtime_ns}\0".encode())
        _code_digest = h.hexdigest()
    return _code_digest


def _files(h: Any, root: Path) -> None:
    h.update(f"{root.resolve()}\0{shown_path(root)}\0".encode())
    if root.is_file():
        h.update(root.read_bytes() + b"\0")
        return
    for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")


def key(root: Path, site_url: str | None) -> str:
    """A catalog's key: the data folder's files, the site_url, the code."""
    h = hashlib.sha256(_code().encode())
    h.update(f"{site_url!r}\0".encode())
    _files(h, root)
    return h.hexdigest()


def inputs_key(*roots: Path, extra: str = "") -> str:
    """A key of files and folders (missing ones count as missing), the code, and `extra`."""
    h = hashlib.sha256(_code().encode())
    h.update(extra.encode() + b"\0")
    for root in roots:
        if root.exists():
            _files(h, root)
        else:
            h.update(f"missing {root.resolve()}\0".encode())
    return h.hexdigest()


def folder(root: Path, kind: str = "catalog") -> Path:
    """Where entries of `kind` are kept for the data folder `root`."""
    return root.resolve().parent / ".cache" / kind


def enabled() -> bool:
    return os.environ.get("RUNBOOK_CATALOG_CACHE", "1") != "0"


def get(root: Path, digest: str, kind: str = "catalog") -> Any:
    """What `put` kept under the folder beside `root`, or None."""
    return read(entry(root, digest, kind))


def entry(root: Path, digest: str, kind: str = "catalog") -> Path:
    """The file `put` keeps `digest`'s value in."""
    return folder(root, kind) / f"{digest}.pickle"


def read(path: Path) -> Any:
    """The value kept in one entry's file, or None."""
    try:
        with open(path, "rb") as f:
            return pickle.load(f)  # noqa: S301 - our own file, keyed by its content
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError, ValueError):
        return None


def put(root: Path, digest: str, value: object, kind: str = "catalog", kept: int = KEPT) -> None:
    """Keep `value` under `digest` beside `root`; the `kept` newest entries of `kind` stay."""
    where = folder(root, kind)
    try:
        where.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=where, prefix=f".{kind}.", suffix=".tmp")
        try:
            os.fchmod(fd, 0o644)  # as any file the user writes: the gate's sandbox reads a catalog
            with os.fdopen(fd, "wb") as f:
                pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, entry(root, digest, kind))
        except (OSError, pickle.PicklingError):
            Path(tmp).unlink(missing_ok=True)
            return
        old = sorted(where.glob("*.pickle"), key=lambda p: p.stat().st_mtime, reverse=True)[kept:]
        for path in old:
            path.unlink(missing_ok=True)
    except OSError:
        return
