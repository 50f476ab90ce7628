"""The data layer: runbook_data/*.yaml read with positions, validated into a Catalog."""
