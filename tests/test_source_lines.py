"""Blocks of hand-written pages are located in the file of docs/ their author edits, not in the
page as rendered: front matter (taken off by mkdocs) and macros (expanded by mkdocs-macros)
before a block do not move it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from mkdocs.utils.meta import get_data

from runbook.gate import run as gate
from runbook.gate.snippets import Snippet, UnclosedFence, extract
from runbook.site.annotation import AnnotationError
from runbook.site.build import Source

from .conftest import ROOT

FRONT_MATTER = """---
title: Source lines
description: A hand-written page whose blocks are located in this file
env: prod
---
"""
assert FRONT_MATTER.count("\n") == 5

PAGE = FRONT_MATTER + """
# Source lines

Check the account first:

{{ command('aws sts get-caller-identity') }}

Then list the tables:

```bash
aws dynamodb list-tables
```
"""

# Written twice (each occurrence at its own line), after a macro whose output holds the same
# command; one in content tabs, with a marker; a console transcript.
TWICE = """# Twice

{{ command('aws sqs list-queues') }}

```bash
aws sqs list-queues
```

Some prose, with a macro in it: {{ value('account') }}.

```bash
aws sqs list-queues
```

=== "dev"

    <!-- runbook: {"skip": "by hand"} -->
    ```bash
    aws s3 ls
    ```

=== "prod"

    ```bash
    aws s3 ls
    ```

```console
$ aws sqs list-queues
{"QueueUrls": []}
```
"""


def fences(text: str, lang: str = "bash") -> list[int]:
    """1-based lines of the opening fences of ``lang`` blocks in a page's source."""
    return [n for n, line in enumerate(text.splitlines(), 1) if line.strip() == f"```{lang}"]


def macro_line(text: str, call: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if call in line)


@pytest.fixture(scope="module")
def plan(tmp_path_factory: pytest.TempPathFactory) -> Iterator[gate.Plan]:
    """The gate's own path: build the site from a docs folder, extract the rendered pages."""
    docs = tmp_path_factory.mktemp("source-lines") / "docs"
    shutil.copytree(ROOT / "docs", docs)
    (docs / "source-lines.md").write_text(PAGE, encoding="utf-8")
    (docs / "twice.md").write_text(TWICE, encoding="utf-8")
    p = gate.plan(ROOT / "mkdocs.yml", docs, None, ["source-lines.md", "twice.md"])
    yield p
    p.close()


def on(plan: gate.Plan, page: str) -> list[Snippet]:
    return [s for s in plan.snippets if s.page.endswith(f"/{page}")]


def test_front_matter_and_a_macro_before_a_block_do_not_move_it(plan: gate.Plan) -> None:
    snippets = on(plan, "source-lines.md")
    [written] = [s for s in snippets if "list-tables" in s.text]
    assert [written.line] == fences(PAGE) == [15]
    assert written.origin is None
    # The page's `env:` (front matter, which mkdocs takes off the rendered page) is its environment.
    assert written.env == "prod"
    # The macro's blocks, one per environment, are at the line of the macro call.
    made = [s for s in snippets if "get-caller-identity" in s.text]
    assert sorted(s.env for s in made) == ["dev", "prod"]
    assert {s.line for s in made} == {macro_line(PAGE, "{{ command(")} == {11}


def test_a_block_written_twice_is_at_each_of_its_lines(plan: gate.Plan) -> None:
    snippets = on(plan, "twice.md")
    assert all(s.origin is None for s in snippets)
    bash = fences(TWICE)
    queues = [s for s in snippets if s.text == "aws sqs list-queues\n" and s.lang == "bash"]
    macro = macro_line(TWICE, "{{ command(")
    assert sorted((s.line, s.env) for s in queues) == sorted(
        [(macro, "dev"), (macro, "prod"), (bash[0], "dev"), (bash[1], "dev"), (fences(TWICE, "console")[0], "dev")])
    tabs = sorted((s.line, s.env, s.annotation.skip) for s in snippets if "s3 ls" in s.text)
    assert tabs == [(bash[2], "dev", "by hand"), (bash[3], "prod", None)]
    assert len({s.id for s in plan.snippets}) == len(plan.snippets)


# ------------------------------------------------------------------ extract, given the source


def _extract(source: str, **macros: str) -> list[Snippet]:
    """Extract a page rendered as mkdocs and the macros make it: the front matter taken off as
    mkdocs does (with the blank lines after it), each ``{{ name }}`` replaced by its output."""
    body, _ = get_data(source)
    rendered = body
    for name, output in macros.items():
        rendered = rendered.replace("{{ " + name + " }}", output.rstrip("\n"))
    where = Source(source, source[: len(source) - len(body)].count("\n"))
    return extract(rendered, "docs/p.md", ["dev", "prod"], "dev", where)


GENERATED = '<!-- runbook: {"origin": null} -->\n```bash\naws s3 ls\n```\n'


def test_without_a_source_lines_are_the_pages_own() -> None:
    page = FRONT_MATTER + "\n```bash\nls\n```\n"
    [s] = extract(page, "docs/p.md", ["dev", "prod"], "dev")
    assert (s.line, s.env) == (7, "prod")


def test_a_macro_output_that_reads_like_a_written_block_does_not_take_its_line() -> None:
    source = FRONT_MATTER + "\n{{ m() }}\n\n```bash\naws s3 ls\n```\n"
    unmarked = GENERATED.split("\n", 1)[1]  # the same block as the written one, no marker
    assert [s.line for s in _extract(source, **{"m()": unmarked})] == [7, 9]


def test_an_unclosed_fence_is_located_in_the_source() -> None:
    source = FRONT_MATTER + "\n{{ m() }}\n\n```bash\naws s3 ls\n"
    with pytest.raises(UnclosedFence, match=r"^docs/p\.md:9: code fence opened here is never closed$"):
        _extract(source, **{"m()": GENERATED * 3})


def test_a_bad_marker_is_located_in_the_source() -> None:
    source = FRONT_MATTER + "\n{{ m() }}\n\n<!-- runbook: {bad} -->\n```bash\nls\n```\n"
    with pytest.raises(AnnotationError, match=r"^docs/p\.md:9: runbook annotation is not valid JSON"):
        _extract(source, **{"m()": GENERATED * 3})


def test_a_block_generated_from_the_data_keeps_its_rendered_line() -> None:
    source = "{{ page() }}\n"
    page = "# P\n\n" + GENERATED.replace("null", '"x.yaml:3"') + "\n" + GENERATED.replace("null", '"x.yaml:9"')
    assert [(s.line, s.origin) for s in _extract(source, **{"page()": page})] == [(4, "x.yaml:3"), (9, "x.yaml:9")]


def test_two_blocks_of_one_environment_at_one_line_keep_their_rendered_lines() -> None:
    """Ids (page:line[env]) must stay unique: two calls on one line cannot share it."""
    source = "# P\n\n{{ a() }} {{ b() }}\n"
    assert [s.line for s in _extract(source, **{"a() }} {{ b()": GENERATED + "\n" + GENERATED})] == [4, 9]
