"""The files the sandbox worker puts in front of every snippet, filled in from ``files/``.

* ``prelude.sh``: the bash function ``aws``, read by every bash of a snippet (``BASH_ENV``);
* ``bin/aws``: the same on ``PATH``, for everything that is not a bash function call;
* ``sitecustomize.py``: on ``PYTHONPATH``, forces every botocore client to the endpoint.

Each adds ``--endpoint-url`` to the command it is given: the real CLI, or the fork server's
client (:mod:`runbook.gate.forkserver.supervisor`).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["shell_quote", "write_aws_shims", "write_sitecustomize"]

FILES = Path(__file__).resolve().parent / "files"


def shell_quote(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


def _fill(name: str, values: dict[str, str]) -> str:
    text = (FILES / name).read_text(encoding="utf-8")
    for token, value in values.items():
        if token not in text:
            raise ValueError(f"{FILES / name} has no {token}")
        text = text.replace(token, value)
    return text


def write_aws_shims(directory: Path, aws: str, endpoint: str) -> Path:
    """``directory/prelude.sh`` and ``directory/bin/aws``, both running ``aws`` with
    ``--endpoint-url endpoint``; returns the prelude's path."""
    values = {"@AWS@": shell_quote(aws), "@ENDPOINT@": shell_quote(endpoint)}
    (directory / "bin").mkdir(parents=True, exist_ok=True)
    prelude = directory / "prelude.sh"
    prelude.write_text(_fill("prelude.sh", values), encoding="utf-8")
    shim = directory / "bin" / "aws"
    shim.write_text(_fill("aws", values), encoding="utf-8")
    shim.chmod(0o755)
    return prelude


def write_sitecustomize(directory: Path, endpoint: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    text = _fill("sitecustomize.py", {'"@ENDPOINT@"': repr(endpoint)})
    (directory / "sitecustomize.py").write_text(text, encoding="utf-8")
