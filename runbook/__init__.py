"""The Kanjona runbook: data, rendering, verification gate and alarm export."""
