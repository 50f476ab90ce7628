"""No green without a check: an unclosed fence, and a timeout beyond the model's bound, are located errors."""

from __future__ import annotations

import pytest

from runbook.data.model import MAX_TIMEOUT, Command
from runbook.gate.snippets import extract
from runbook.site.annotation import Annotation, AnnotationError


def test_an_unclosed_fence_is_a_located_error() -> None:
    page = "# T\n\n```bash\naws sts get-caller-identity\n```\n\ntext\n\n```bash\naws s3 ls\n\n## More\n"
    with pytest.raises(AnnotationError) as err:
        extract(page, "docs/page.md", ["dev"], "dev")
    assert str(err.value) == "docs/page.md:9: code fence opened here is never closed"


def test_an_unclosed_tilde_fence_after_a_closed_one_of_the_other_kind() -> None:
    page = "~~~python\nprint(1)\n```\n"
    with pytest.raises(AnnotationError, match=r"^docs/p\.md:1: code fence opened here is never closed$"):
        extract(page, "docs/p.md", ["dev"], "dev")


def test_a_fence_closed_on_the_last_line_is_fine() -> None:
    [s] = extract("```bash\necho hi\n```", "docs/p.md", ["dev"], "dev")
    assert s.text == "echo hi\n" and s.line == 1


def test_a_timeout_above_the_model_maximum_is_a_located_error() -> None:
    with pytest.raises(AnnotationError) as err:
        Annotation.parse('{"timeout": 100000}', "docs/page.md:7")
    assert str(err.value) == (
        "docs/page.md:7: runbook annotation 'timeout' must be at most 120 seconds, got 100000"
    )


def test_the_annotation_and_the_model_share_one_bound() -> None:
    assert Annotation.parse(f'{{"timeout": {MAX_TIMEOUT}}}', "p:1").timeout == MAX_TIMEOUT
    with pytest.raises(AnnotationError):
        Annotation.parse(f'{{"timeout": {MAX_TIMEOUT + 0.5}}}', "p:1")
    le = [m.le for m in Command.model_fields["timeout"].metadata if hasattr(m, "le")]
    assert le == [MAX_TIMEOUT]
