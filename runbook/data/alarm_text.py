"""An alarm's CloudWatch AlarmDescription and its length limit: one rule for `runbook check` and the export."""

from __future__ import annotations

from runbook.data import placeholders
from runbook.data.model import Alarm, Catalog
from runbook.errors import Loc, Problem

# CloudWatch rejects a longer AlarmDescription (moto does not, so the data check and the export do).
MAX_DESCRIPTION = 1024


def alarm_url(site_url: str, alarm_id: str, env: str) -> str:
    """The alarm page, with the environment's tabs selected on arrival."""
    return f"{site_url}alarms/{alarm_id}/?env={env}"


def description(catalog: Catalog, alarm: Alarm, env: str, site_url: str) -> str:
    """What the alarm means on one line, then the link to its page (operator inputs shown as <name>)."""
    text = placeholders.substitute(alarm.summary, catalog.scope(env), lambda name: f"<{name}>")
    return f"{' '.join(text.split())}\nRunbook: {alarm_url(site_url, alarm.id, env)}"


def description_problem(alarm: Alarm, env: str, text: str) -> Problem | None:
    """The located error when `text`, the alarm's AlarmDescription in `env`, is too long."""
    if len(text) <= MAX_DESCRIPTION:
        return None
    return Problem(
        alarm.loc_of("summary") or alarm.loc or Loc("runbook_data/alarms"),
        f"alarm '{alarm.id}': the AlarmDescription in {env} would be {len(text)} "
        f"characters, CloudWatch allows {MAX_DESCRIPTION}: shorten the summary "
        f"(the rest belongs in 'description', shown on the page)",
    )


def description_problems(catalog: Catalog, site_url: str) -> list[Problem]:
    """Every alarm whose description is too long in some environment (the first such environment)."""
    problems = []
    for alarm in catalog.alarms:
        for env in catalog.environments:
            problem = description_problem(alarm, env.name, description(catalog, alarm, env.name, site_url))
            if problem is not None:
                problems.append(problem)
                break
    return problems
