"""Placeholders, rendering per environment and the extraction of blocks from rendered pages."""

from __future__ import annotations

import json

import pytest

from runbook.data import placeholders
from runbook.data.load import load
from runbook.data.model import Command
from runbook.gate.snippets import extract
from runbook.site import render
from runbook.site.annotation import Annotation, AnnotationError

from .conftest import ROOT

CAT = load(ROOT / "runbook_data")


def test_environment_values_and_resource_attributes_resolve_per_environment() -> None:
    prod = CAT.scope("prod")
    assert prod["lead_handler"] == "kanjona-prod-lead-handler"
    assert prod["lead_handler.log_group"] == "/aws/lambda/kanjona-prod-lead-handler"
    assert prod["dlq.url"] == "https://sqs.us-east-1.amazonaws.com/222222222222/kanjona-prod-dlq"
    assert CAT.scope("dev")["lambda_error_rate_pct"] == "5" and prod["lambda_error_rate_pct"] == "1"


@pytest.mark.parametrize(
    "text",
    ["${HOME}", '{"count": 100}', "{{ alarm_page('x') }}", "{ spaced }", "{:d}", "{0}"],
)
def test_placeholder_syntax_leaves_shell_json_and_templates_alone(text: str) -> None:
    assert not list(placeholders.find(text))


def test_operator_inputs_render_as_fill_ins_and_are_explained() -> None:
    cmd = Command.model_validate(
        {"shell": "aws lambda update-alias --function-name {lead_handler} --function-version {previous-version}"}
    )
    md = render.command_markdown(CAT, cmd)
    assert "--function-name kanjona-prod-lead-handler --function-version <previous-version>" in md
    assert '!!! question "Fill in before running"' in md
    assert "`<previous-version>`" in md and "list-versions-by-function" in md


def test_command_renders_one_annotated_tab_per_environment() -> None:
    cmd = CAT.alarm("lambda-errors").investigation[0].commands[0]
    md = render.command_markdown(CAT, cmd)
    # `===!`: the command's own tab set, never merged with the next command's
    assert [line for line in md.splitlines() if line.startswith("===")] == ['===! "dev"', '=== "prod"']
    annotations = [line.strip() for line in md.splitlines() if "<!-- runbook:" in line]
    assert len(annotations) == 2
    meta = json.loads(annotations[0].removeprefix("<!-- runbook: ").removesuffix(" -->"))
    assert meta["origin"] == f"{cmd.loc.file}:{cmd.loc.line}"


def test_prose_labels_values_that_differ_between_environments() -> None:
    assert render.prose(CAT, "in {region}") == "in us-east-1"
    assert render.prose(CAT, "{lambda_error_rate_pct}%") == "5 (dev) / 1 (prod)%"


def test_a_command_in_prose_is_one_whole_command_per_environment() -> None:
    text = render.prose(CAT, "run `aws lambda get-function --function-name {lead_handler}` first")
    assert "(dev)" not in text and " / " not in text
    assert ('<code class="rb-per-env" data-rb-env="dev">aws lambda get-function --function-name '
            'kanjona-dev-lead-handler</code>') in text
    assert 'data-rb-env="prod">aws lambda get-function --function-name kanjona-prod-lead-handler<' in text
    assert render.prose(CAT, "`aws s3 ls --region {region}`") == "`aws s3 ls --region us-east-1`"


def test_console_links_are_urls_of_the_alarms_region() -> None:
    from urllib.parse import parse_qs, urlsplit

    for alarm in CAT.alarms:
        for env in CAT.environments:
            links = render.console_links(CAT, alarm, env.name)
            assert "alarm" in links and "dashboard" in links
            for url in links.values():
                parts = urlsplit(url)
                assert parts.scheme == "https" and parts.netloc == f"{env.region}.console.aws.amazon.com"
                assert parse_qs(parts.query) == {"region": [env.region]}
                assert " " not in url and "{" not in url and "<" not in url
            name = render.per_env(CAT, alarm.name)[env.name]
            assert links["alarm"].endswith("#alarmsV2:alarm/" + name)
    logs = render.console_links(CAT, CAT.alarm("lambda-errors"), "prod")["logs"]
    assert logs.endswith("#logsV2:log-groups/log-group/$252Faws$252Flambda$252Fkanjona-prod-lead-handler")


def test_every_alarm_page_starts_with_is_it_still_firing() -> None:
    for alarm in CAT.alarms:
        md = render.alarm_page(CAT, alarm.id)
        investigation = md.split("## Investigation {#investigation}\n", 1)[1]
        assert investigation.lstrip().startswith("1. **Is it still firing?**")
        assert f"describe-alarms --alarm-names {render.per_env(CAT, alarm.name)['prod']}" in md
        assert md.count("## ") == len(set(line for line in md.splitlines() if line.startswith("## ")))
        assert render.prose(CAT, alarm.summary) in md and md.count(render.prose(CAT, alarm.summary)) == 1


PAGE = """---
env: prod
---
# Title

Intro.

=== "dev"

    <!-- runbook: {"origin": "runbook_data/x.yaml:3", "expect": ["a"]} -->
    ```bash
    aws sts get-caller-identity
    ```

=== "prod"

    <!-- runbook: {"origin": "runbook_data/x.yaml:3", "expect": ["a"]} -->
    ```bash
    aws sts get-caller-identity
    ```

```console
$ aws s3 ls \\
    s3://bucket
2024-01-01 file
```

```javascript
console.log(1)
```
"""


def test_extract_assigns_environments_origins_and_languages() -> None:
    snippets = extract(PAGE, "docs/p.md", ["dev", "prod"], "dev")
    assert [(s.line, s.env, s.lang) for s in snippets] == [
        (11, "dev", "bash"),
        (18, "prod", "bash"),
        (22, "prod", "bash"),  # outside tabs: the page's front-matter env
        (28, "prod", "javascript"),
    ]
    assert snippets[0].origin == "runbook_data/x.yaml:3"
    assert snippets[0].annotation == Annotation(origin="runbook_data/x.yaml:3", expect=("a",))
    assert snippets[2].text == "aws s3 ls \\\n    s3://bucket\n"
    assert not snippets[3].executable


def test_a_broken_annotation_is_a_located_error() -> None:
    with pytest.raises(AnnotationError, match=r"^docs/p.md:2: runbook annotation is not valid JSON"):
        extract("x\n<!-- runbook: {bad} -->\n```bash\nls\n```\n", "docs/p.md", ["dev"], "dev")


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ('{"expct": ["a"]}', "docs/p.md:2: unknown runbook annotation key 'expct' (known: origin, skip, xfail, "
                             "expect, stream, timeout, mutates, gnu_only, undo, code_at)"),
        ('{"timeout": "5"}',
         "docs/p.md:2: runbook annotation 'timeout' must be a positive number of seconds, got \"5\""),
        ('{"stream": 1}', "docs/p.md:2: runbook annotation 'stream' must be true or false, got 1"),
        ('{"expect": [1]}',
         "docs/p.md:2: runbook annotation 'expect' must be a string or a list of strings, got [1]"),
    ],
)
def test_a_misspelled_or_mistyped_annotation_is_a_located_error(marker: str, message: str) -> None:
    page = f"# P\n<!-- runbook: {marker} -->\n```bash\naws s3 ls\n```\n"
    with pytest.raises(AnnotationError) as err:
        extract(page, "docs/p.md", ["dev"], "dev")
    assert str(err.value) == message


def test_an_annotation_round_trips_through_its_marker() -> None:
    ann = Annotation(origin="runbook_data/x.yaml:3", xfail="moto", expect=("a", "b"), stream=True, timeout=5.0,
                     mutates=False)
    marker = ann.comment()
    assert marker == ('<!-- runbook: {"expect": ["a", "b"], "mutates": false, "origin": "runbook_data/x.yaml:3", '
                      '"stream": true, "timeout": 5.0, "xfail": "moto"} -->')
    assert Annotation.parse(marker.removeprefix("<!-- runbook: ").removesuffix(" -->"), "p:1") == ann
