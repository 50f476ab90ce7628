"""JSON Schemas of the data files, for editors (generated from the models; a test keeps them current)."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from runbook.data.model import AlarmGroupFile, EnvironmentsFile, EscalationFile, InputsFile, InventoryFile, PageFile

SCHEMAS: dict[str, type[BaseModel]] = {
    "environments.schema.json": EnvironmentsFile,
    "inventory.schema.json": InventoryFile,
    "inputs.schema.json": InputsFile,
    "escalation.schema.json": EscalationFile,
    "alarm-group.schema.json": AlarmGroupFile,
    "page.schema.json": PageFile,
}


def render() -> dict[str, str]:
    """File name → schema text (deterministic)."""
    return {
        name: json.dumps(model.model_json_schema(by_alias=False), indent=2, sort_keys=True) + "\n"
        for name, model in SCHEMAS.items()
    }


def write(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name, text in render().items():
        path = folder / name
        path.write_text(text, encoding="utf-8")
        out.append(path)
    return out
