"""Who to call: the escalation ladder of a severity (alarm pages) and the escalation page (pure).

A contact whose value is a placeholder (the seed's "[PagerDuty/Opsgenie link]", empty...) is
shown as "not configured" with where to set it, never as a link or as if it reached anyone.
"""

from __future__ import annotations

import html

from runbook.data.model import Catalog, Contact, Tier

ESCALATION_FILE = "escalation.yaml"


def _badge(severity: str) -> str:
    # The same badge as render.severity_badge (not imported: render may come to import this module).
    return f'<span class="rb-sev rb-sev-{severity}">{severity.capitalize()}</span>'


def _text(value: str) -> str:
    """Data text as literal Markdown: no HTML, no link brackets."""
    return html.escape(value, quote=False).replace("[", "\\[").replace("]", "\\]")


def _table(columns: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(columns) + " |", "|" + "|".join(" --- " for _ in columns) + "|"]
    out += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(out) + "\n"


def _is_email(value: str) -> bool:
    local, at, domain = value.partition("@")
    return bool(at and local and "." in domain.strip(".") and not any(c.isspace() or c in "<>()[]" for c in value))


def contact_link(contact: Contact) -> str | None:
    """Where a configured contact leads: its url, the value itself when it is a URL, mailto: for an address."""
    if not contact.configured:
        return None
    value = contact.value.strip()
    if contact.url:
        return contact.url
    if value.startswith(("https://", "http://")) and not any(c.isspace() or c in "()<>" for c in value):
        return value
    if _is_email(value):
        return f"mailto:{value}"
    return None


def where_to_configure(cat: Catalog, contact: Contact) -> str:
    """`runbook_data/escalation.yaml` (line N): the data an editor changes to configure it."""
    where = f"`{cat.root.name}/{ESCALATION_FILE}`"
    loc = contact.loc_of("value")  # where `runbook check` points its warning
    return where + (f", line {loc.line}" if loc else "")


def contact_markdown(cat: Catalog, contact: Contact) -> str:
    """`**channel**: value` (a link where it leads somewhere), or visibly not configured."""
    label = f"**{_text(contact.channel)}**"
    if not contact.configured:
        return (f'{label}: <span class="rb-not-configured">not configured</span> '
                f"(set it in {where_to_configure(cat, contact)})")
    link = contact_link(contact)
    shown = _text(contact.value.strip())
    return f"{label}: [{shown}]({link})" if link else f"{label}: {shown}"


def _contacts(cat: Catalog) -> str:
    return "\n".join(f"- {contact_markdown(cat, c)}" for c in cat.escalation.contacts) + "\n"


def _tier_line(tier: Tier, following: Tier | None) -> str:
    line = f"**{_text(tier.level)} · {_text(tier.title)}**"
    if tier.duties:
        line += ": " + "; ".join(_text(d) for d in tier.duties) + "."
    if tier.escalate_after and following is not None:
        line += f" Escalate to {_text(following.level)} after {_text(tier.escalate_after)}."
    elif tier.escalate_after:
        line += f" Escalate after {_text(tier.escalate_after)}."
    return line


def who_to_call(cat: Catalog, severity: str) -> str:
    """The body of an alarm page's "Who to call" section (links relative to /alarms/<id>/)."""
    esc = cat.escalation
    level = esc.level(severity)
    ladder = esc.ladder(severity)
    out = [
        f"{_badge(severity)} **{_text(level.level)}**: respond within **{_text(level.response_time)}**."
        + (f" {_text(level.notify.rstrip('.'))}." if level.notify else "")
        + "\n",
        "Who is engaged, in order:\n",
    ]
    out.append("\n".join(
        f"{i}. {_tier_line(t, ladder[i] if i < len(ladder) else None)}" for i, t in enumerate(ladder, 1)
    ) + "\n")
    out.append("How to reach them:\n")
    out.append(_contacts(cat))
    out.append("The whole procedure: [Escalation](../escalation.md#escalation-path).\n")
    return "\n".join(out)


def escalation_page(cat: Catalog) -> str:
    """The escalation page (/escalation/): severity levels with their alarms, the path, the contacts."""
    esc = cat.escalation
    out = ["## Severity Levels {#severity-levels}\n"]
    rows = []
    for lv in esc.severity_levels:
        alarms = [a for a in cat.alarms if a.severity == lv.severity]
        links = ", ".join(f"[{a.title}](alarms/{a.id}.md)" for a in alarms) or "—"
        rows.append([f"{lv.level} - {_badge(lv.severity)}", _text(lv.response_time), _text(lv.examples),
                     _text(lv.notify), links])
    out.append(_table(["Level", "Response Time", "Examples", "Notify", "Alarms"], rows))
    out.append("## Escalation Path {#escalation-path}\n")
    for i, tier in enumerate(esc.path, 1):
        body = "".join(f"    - {_text(d)}\n" for d in tier.duties)
        if tier.severities:
            body += f"    - Engaged for: {', '.join(tier.severities)}\n"
        if tier.escalate_after:
            body += f"    - Escalate after {_text(tier.escalate_after)}\n"
        out.append(f"{i}. **{_text(tier.level)} - {_text(tier.title)}**\n\n{body}")
    out.append("## Contact Information {#contact-information}\n")
    if esc.contacts_note:
        out.append(esc.contacts_note + "\n")
    out.append(_contacts(cat))
    return "\n".join(out)
