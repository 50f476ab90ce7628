"""runbook.data.yaml_reader: every key and value keeps its file:line:col, syntax errors are located lines."""

from __future__ import annotations

from pathlib import Path

from runbook.data.yaml_reader import LOC_KEY, Anchor, read
from runbook.errors import Loc, Problem

DOC = """\
# a comment line
name: orders
nested:
  count: 3
  quoted: "a {x} b"
items:
  - first
  - key: value
block: |
  line one
    indented {y}
folded: >
  folded {z}
"""


def _read(tmp_path: Path, text: str):
    path = tmp_path / "f.yaml"
    path.write_text(text, encoding="utf-8")
    return read(path, "data/f.yaml")


def test_keys_and_values_have_their_positions(tmp_path: Path) -> None:
    source, problems = _read(tmp_path, DOC)
    assert problems == [] and source is not None
    assert source.file == "data/f.yaml"
    assert source.loc(("name",)) == Loc("data/f.yaml", 2, 7)
    assert source.loc(("name",), key=True) == Loc("data/f.yaml", 2, 1)
    assert source.loc(("nested", "count")) == Loc("data/f.yaml", 4, 10)
    assert source.loc(("nested", "count"), key=True) == Loc("data/f.yaml", 4, 3)
    assert source.loc(("items", 0)) == Loc("data/f.yaml", 7, 5)
    assert source.loc(("items", 1, "key")) == Loc("data/f.yaml", 8, 10)
    assert source.loc(()) == Loc("data/f.yaml", 1, 1)


def test_a_missing_path_falls_back_to_its_deepest_existing_node(tmp_path: Path) -> None:
    source, _ = _read(tmp_path, DOC)
    assert source is not None
    assert source.loc(("nested", "absent")) == Loc("data/f.yaml", 4, 3)  # the `nested` mapping's value
    assert source.loc(("items", 7)) == Loc("data/f.yaml", 7, 3)
    assert source.loc(("nested", "absent"), key=True) == Loc("data/f.yaml", 4, 3)


def test_plain_data_carries_anchors(tmp_path: Path) -> None:
    source, _ = _read(tmp_path, DOC)
    assert source is not None
    data = source.data
    assert data["name"] == "orders" and data["nested"]["count"] == 3 and data["items"][0] == "first"
    anchor = data["nested"][LOC_KEY]
    assert isinstance(anchor, Anchor)
    assert anchor.loc == Loc("data/f.yaml", 4, 3)
    assert anchor.at("count") == Loc("data/f.yaml", 4, 10)
    assert anchor.text_at(2, "quoted") == Loc("data/f.yaml", 5, 14)  # `{` inside the quotes


def test_text_loc_in_quoted_and_block_scalars(tmp_path: Path) -> None:
    source, _ = _read(tmp_path, DOC)
    assert source is not None
    quoted = source.data["nested"]["quoted"]
    assert source.text_loc(("nested", "quoted"), quoted.index("{")) == Loc("data/f.yaml", 5, 14)
    block = source.data["block"]
    assert block == "line one\n  indented {y}\n"
    # A block scalar's text starts on the line after the indicator, at the block's indentation.
    assert source.text_loc(("block",), 0) == Loc("data/f.yaml", 10, 3)
    assert source.text_loc(("block",), block.index("{")) == Loc("data/f.yaml", 11, 14)
    folded = source.data["folded"]
    assert source.text_loc(("folded",), folded.index("{")) == Loc("data/f.yaml", 13, 10)
    # Not a string: the value's own position.
    assert source.text_loc(("nested", "count"), 5) == Loc("data/f.yaml", 4, 10)


def test_syntax_errors_are_located_problems(tmp_path: Path) -> None:
    cases = {
        "a: {b: 1 c: 2}\n": Problem(Loc("data/f.yaml", 1, 11), "YAML syntax error: while parsing a flow mapping "
                                    "expected ',' or '}', but got ':'"),
        "a: 1\na: 2\n": Problem(Loc("data/f.yaml", 2, 1), "YAML syntax error: duplicate key 'a'"),
        "a:\n\tb: 1\n": Problem(Loc("data/f.yaml", 2, 1),
                               "YAML syntax error: tab character used for indentation; YAML indents with spaces"),
    }
    for text, expected in cases.items():
        source, problems = _read(tmp_path, text)
        assert (source, problems) == (None, [expected]), text


def test_empty_and_non_mapping_files(tmp_path: Path) -> None:
    for text in ("", "\n  \n", "# only\n# comments\n"):
        assert _read(tmp_path, text) == (None, [Problem(Loc("data/f.yaml"), "file is empty, expected a YAML mapping")])
    for text in ("- a\n- b\n", "just text\n"):
        assert _read(tmp_path, text) == (
            None, [Problem(Loc("data/f.yaml"), "expected a YAML mapping at the top of the file")])
