"""The committed JSON Schemas match the models, and the data validates against them."""

from __future__ import annotations

import jsonschema
import yaml

from runbook.data import schema

from .conftest import ROOT

FOLDER = ROOT / "runbook_data" / "schema"


def test_committed_schemas_are_current() -> None:
    for name, text in schema.render().items():
        committed = (FOLDER / name).read_text(encoding="utf-8") if (FOLDER / name).exists() else ""
        assert committed == text, f"runbook_data/schema/{name} is stale: run `.venv/bin/runbook schema`"


def test_data_files_validate_against_their_schema() -> None:
    pairs = [
        ("environments.yaml", "environments"),
        ("inventory.yaml", "inventory"),
        ("inputs.yaml", "inputs"),
        ("escalation.yaml", "escalation"),
    ]
    pairs += [(f"alarms/{p.name}", "alarm-group") for p in (ROOT / "runbook_data/alarms").glob("*.yaml")]
    pairs += [(f"procedures/{p.name}", "page") for p in (ROOT / "runbook_data/procedures").glob("*.yaml")]
    for data_file, kind in pairs:
        data = yaml.safe_load((ROOT / "runbook_data" / data_file).read_text(encoding="utf-8"))
        jsonschema.validate(data, schema.SCHEMAS[f"{kind}.schema.json"].model_json_schema())


def test_schema_rejects_unknown_keys() -> None:
    alarm_schema = schema.SCHEMAS["alarm-group.schema.json"].model_json_schema()
    bad = {"group": "g", "title": "G", "alarms": [], "colour": "red"}
    try:
        jsonschema.validate(bad, alarm_schema)
    except jsonschema.ValidationError as exc:
        assert "colour" in exc.message
    else:
        raise AssertionError("an unknown key passed the schema")
