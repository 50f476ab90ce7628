"""Who to call: placeholder contacts are warned about at their line and shown as not configured;
every alarm severity gets its escalation ladder, response time and contacts from the data."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import markdown
import pytest
import yaml

from runbook.cli import main
from runbook.data.load import load
from runbook.data.model import Catalog, Contact, is_placeholder
from runbook.site.escalation import escalation_page, who_to_call

ROOT = Path(__file__).resolve().parent.parent
RAW = yaml.safe_load((ROOT / "runbook_data/escalation.yaml").read_text(encoding="utf-8"))
NOT_CONFIGURED = '<span class="rb-not-configured">not configured</span>'
SUFFIX = "pages show it as not configured until it is set"


def data_with_contacts(tmp_path: Path, contacts: str) -> Path:
    """A copy of runbook_data whose escalation.yaml ends with this `contacts:` block."""
    data = tmp_path / "runbook_data"
    shutil.copytree(ROOT / "runbook_data", data)
    path = data / "escalation.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text[: text.index("\ncontacts:\n") + 1] + contacts, encoding="utf-8")
    return data


def line_of(data: Path, needle: str) -> int:
    lines = (data / "escalation.yaml").read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if needle in line)


def html_items(md: str) -> dict[str, str]:
    """The rendered contact list items, by channel."""
    rendered = markdown.markdown(md, extensions=["attr_list", "md_in_html", "tables"])
    items = re.findall(r"<li>(.*?)</li>", rendered, re.S)
    return {m.group(1): item for item in items if (m := re.match(r"<strong>(.*?)</strong>", item))}


PLACEHOLDER_CONTACTS = """\
contacts:
  - channel: On-Call
    value: "[PagerDuty/Opsgenie link]"
  - channel: Phone
    value: ""
  - channel: Pager
  - channel: Email
    value: ops@kanjona.com
"""

REAL_CONTACTS = """\
contacts:
  - channel: On-Call
    value: Kanjona primary schedule
    url: https://kanjona.pagerduty.com/schedules/PABC123
  - channel: Slack Channel
    value: "#kanjona-alerts"
  - channel: Email
    value: ops@kanjona.com
"""


# ------------------------------------------------------------------ placeholder detection


@pytest.mark.parametrize("value", [
    "[PagerDuty/Opsgenie link]", "[...]", "[]", "  [phone number]  ", "<on-call link>", "", "   ", "TBD", "todo",
])
def test_placeholder_values_are_not_configured(value: str) -> None:
    assert is_placeholder(value)
    assert not Contact.model_validate({"channel": "On-Call", "value": value}).configured


@pytest.mark.parametrize("value", [
    "#kanjona-alerts", "ops@kanjona.com", "+1 555 0100", "https://kanjona.pagerduty.com/schedules/PABC123",
    "[Slack](https://kanjona.slack.com)", "Kanjona primary schedule",
])
def test_real_values_are_configured(value: str) -> None:
    assert not is_placeholder(value)
    assert Contact.model_validate({"channel": "On-Call", "value": value}).configured


def test_a_contact_without_a_value_is_not_configured() -> None:
    assert not Contact.model_validate({"channel": "Pager"}).configured


# ------------------------------------------------------------------ runbook check


def test_check_warns_at_each_placeholder_contact_and_passes(tmp_path: Path, monkeypatch, capsys) -> None:
    data = data_with_contacts(tmp_path, PLACEHOLDER_CONTACTS)
    monkeypatch.chdir(tmp_path)
    assert main(["--data", "runbook_data", "check"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("runbook data OK: ")
    on_call = line_of(data, '"[PagerDuty/Opsgenie link]"')
    phone = line_of(data, 'value: ""')
    pager = line_of(data, "channel: Pager")
    assert err == (
        f"runbook_data/escalation.yaml:{on_call}:12: warning: contact 'On-Call' is not configured: "
        f"'[PagerDuty/Opsgenie link]' is a placeholder; {SUFFIX}\n"
        f"runbook_data/escalation.yaml:{phone}:12: warning: contact 'Phone' is not configured: "
        f"it has no value; {SUFFIX}\n"
        # No `value` key: the contact's own mapping.
        f"runbook_data/escalation.yaml:{pager}:5: warning: contact 'Pager' is not configured: "
        f"it has no value; {SUFFIX}\n"
        "3 warning(s)\n"
    )


def test_check_of_the_project_data_warns_at_its_bracketed_contacts(monkeypatch, capsys) -> None:
    # Today the on-call link: it stays a placeholder until the team has one (then no warning).
    unset = [c for c in RAW["contacts"] if str(c.get("value", "")).startswith("[")]
    monkeypatch.chdir(ROOT)
    assert main(["check"]) == 0
    expected = [
        f"runbook_data/escalation.yaml:{line_of(ROOT / 'runbook_data', c['value'])}:12: "
        f"warning: contact '{c['channel']}' is not configured: '{c['value']}' is a placeholder; {SUFFIX}"
        for c in unset
    ]
    assert capsys.readouterr().err == "".join(f"{line}\n" for line in expected) + (
        f"{len(unset)} warning(s)\n" if unset else "")


def test_check_with_every_contact_real_has_no_warning(tmp_path: Path, monkeypatch, capsys) -> None:
    data_with_contacts(tmp_path, REAL_CONTACTS)
    monkeypatch.chdir(tmp_path)
    assert main(["--data", "runbook_data", "check"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("runbook data OK: ")
    assert err == ""


def test_a_placeholder_url_is_an_error_not_a_warning(tmp_path: Path, monkeypatch, capsys) -> None:
    data = data_with_contacts(tmp_path, REAL_CONTACTS.replace(
        "https://kanjona.pagerduty.com/schedules/PABC123", '"[PagerDuty link]"'))
    monkeypatch.chdir(tmp_path)
    assert main(["--data", "runbook_data", "check"]) == 1
    out, err = capsys.readouterr()
    line = line_of(data, '"[PagerDuty link]"')
    assert out == ""
    assert err.startswith(f"runbook_data/escalation.yaml:{line}:10: url: '[PagerDuty link]' does not match")
    assert err.endswith("\n1 problem(s) found\n")
    assert "Traceback" not in err


def test_a_severity_that_engages_no_tier_is_an_error(tmp_path: Path, monkeypatch, capsys) -> None:
    data = tmp_path / "runbook_data"
    shutil.copytree(ROOT / "runbook_data", data)
    path = data / "escalation.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace(
        "    duties:\n", "    severities: [critical, high]\n    duties:\n"), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert main(["--data", "runbook_data", "check"]) == 1
    where = f"runbook_data/escalation.yaml:{line_of(data, '- level: L1')}:3"
    assert capsys.readouterr().err == (
        f"{where}: severity 'low' engages no tier of the escalation path\n"
        f"{where}: severity 'medium' engages no tier of the escalation path\n"
        "2 problem(s) found\n"
    )


# ------------------------------------------------------------------ who to call


@pytest.fixture(scope="module")
def cat() -> Catalog:
    return load(ROOT / "runbook_data")


@pytest.mark.parametrize("level", RAW["severity_levels"], ids=lambda lv: lv["severity"])
def test_who_to_call_gives_the_level_response_time_and_ladder_in_order(cat: Catalog, level: dict) -> None:
    md = who_to_call(cat, level["severity"])
    first = md.splitlines()[0]
    assert f"**{level['level']}**" in first
    assert f"respond within **{level['response_time']}**" in first
    if level.get("notify"):
        assert level["notify"] in first
    tiers = [t for t in RAW["path"] if not t.get("severities") or level["severity"] in t["severities"]]
    numbered = [line for line in md.splitlines() if re.match(r"\d+\. ", line)]
    assert len(numbered) == len(tiers)
    for i, (line, tier) in enumerate(zip(numbered, tiers, strict=True), 1):
        assert line.startswith(f"{i}. **{tier['level']} · {tier['title']}**")
        for duty in tier["duties"]:
            assert duty in line
        if tier.get("escalate_after"):
            following = f" to {tiers[i]['level']}" if i < len(tiers) else ""
            assert f"Escalate{following} after {tier['escalate_after']}." in line


def test_who_to_call_follows_the_data(tmp_path: Path) -> None:
    data = tmp_path / "runbook_data"
    shutil.copytree(ROOT / "runbook_data", data)
    path = data / "escalation.yaml"
    text = path.read_text(encoding="utf-8").replace("response_time: 15 minutes", "response_time: 7 minutes")
    text = text.replace("    title: Engineering Lead\n", "    title: Engineering Lead\n    severities: [critical]\n")
    path.write_text(text, encoding="utf-8")
    changed = load(data)
    critical, high = who_to_call(changed, "critical"), who_to_call(changed, "high")
    assert "respond within **7 minutes**" in critical
    assert "3. **L3 · Engineering Lead**" in critical
    assert "Engineering Lead" not in high
    assert "2. **L2 · Senior Engineer**" in high
    assert "Engaged for: critical" in escalation_page(changed)


@pytest.mark.parametrize("severity", sorted({lv["severity"] for lv in RAW["severity_levels"]}))
def test_placeholder_contact_is_not_configured_and_never_a_link(cat: Catalog, severity: str) -> None:
    md = who_to_call(cat, severity)
    assert "[PagerDuty/Opsgenie link]" not in md and "PagerDuty" not in md
    line = line_of(ROOT / "runbook_data", '"[PagerDuty/Opsgenie link]"')
    assert f"- **On-Call**: {NOT_CONFIGURED} (set it in `runbook_data/escalation.yaml`, line {line})" in md
    items = html_items(md)
    assert NOT_CONFIGURED in items["On-Call"]
    assert "<a " not in items["On-Call"]
    # The real contacts, as they are in the data; an address is a mailto: link.
    assert items["Slack Channel"] == "<strong>Slack Channel</strong>: #kanjona-alerts"
    assert items["Email"] == '<strong>Email</strong>: <a href="mailto:ops@kanjona.com">ops@kanjona.com</a>'


def test_real_urls_are_links(tmp_path: Path) -> None:
    real = load(data_with_contacts(tmp_path, REAL_CONTACTS))
    items = html_items(who_to_call(real, "critical"))
    assert items["On-Call"] == (
        '<strong>On-Call</strong>: <a href="https://kanjona.pagerduty.com/schedules/PABC123">'
        "Kanjona primary schedule</a>"
    )
    assert "rb-not-configured" not in who_to_call(real, "critical") + escalation_page(real)


def test_escalation_page_shows_placeholders_as_not_configured(cat: Catalog) -> None:
    page = escalation_page(cat)
    assert "PagerDuty" not in page
    assert "<a " not in html_items(page)["On-Call"]
    assert NOT_CONFIGURED in html_items(page)["On-Call"]
    for section in ("## Severity Levels {#severity-levels}", "## Escalation Path {#escalation-path}",
                    "## Contact Information {#contact-information}"):
        assert section in page
    for a in cat.alarms:
        assert f"[{a.title}](alarms/{a.id}.md)" in page
    for lv in RAW["severity_levels"]:
        assert f"| {lv['level']} - " in page and lv["response_time"] in page
