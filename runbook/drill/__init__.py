"""Incident drills: a simulated incident per alarm, followed through its page (runbook drill)."""
