"""Which AWS CLI the gate takes when none is asked for: the first v2 among every `aws` on PATH
and /usr/bin/aws, never a v1 that happens to come first (a pyenv shim of awscli 1.x)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from runbook.errors import GateError
from runbook.gate.static import cli
from runbook.gate.static.cli import find_aws_cli_v2

from .conftest import CONFIGURED, DEFAULT_AWS_CLI, aws_cli_problem, unavailable

V1 = "aws-cli/1.45.11 Python/3.11.7 Linux botocore/1.43.11"


def _fake(folder: Path, body: str) -> str:
    """An executable `aws` in its own folder (a folder of PATH)."""
    folder.mkdir(parents=True, exist_ok=True)
    fake = folder / "aws"
    fake.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    return str(fake)


def _v1(folder: Path) -> str:
    return _fake(folder, f"echo '{V1}'")


@pytest.fixture(autouse=True)
def configured(monkeypatch: pytest.MonkeyPatch) -> str | None:
    """RUNBOOK_AWS_CLI as the test run was given it; unset for the test (nothing asked for)."""
    value = os.environ.get(CONFIGURED)
    monkeypatch.delenv(CONFIGURED, raising=False)
    return value


def _v2(path: str, configured: str | None, monkeypatch: pytest.MonkeyPatch) -> str:
    """``path`` if it is an AWS CLI v2, else the one rule (a failure if RUNBOOK_AWS_CLI was set)."""
    problem = aws_cli_problem(path)
    if problem:
        if configured:
            monkeypatch.setenv(CONFIGURED, configured)
        unavailable(problem)
    return path


def test_a_v1_first_on_path_is_passed_over_for_the_v2_at_usr_bin(tmp_path, monkeypatch, configured):
    debian = _v2(DEFAULT_AWS_CLI, configured, monkeypatch)
    fake = _v1(tmp_path / "shims")
    # This machine's PATH behind it (a pyenv shim of awscli 1.x may come first there too).
    monkeypatch.setenv("PATH", f"{tmp_path / 'shims'}{os.pathsep}{os.environ.get('PATH', '')}")
    found = find_aws_cli_v2()
    assert found != fake
    assert os.path.realpath(found) == os.path.realpath(debian)


def test_usr_bin_aws_is_tried_when_path_has_only_a_v1(tmp_path, monkeypatch, configured):
    debian = _v2(DEFAULT_AWS_CLI, configured, monkeypatch)
    _v1(tmp_path / "shims")
    monkeypatch.setenv("PATH", str(tmp_path / "shims"))
    assert find_aws_cli_v2() == debian


def test_the_first_v2_in_path_order_is_taken(tmp_path, monkeypatch, configured):
    real = _v2(configured or DEFAULT_AWS_CLI, configured, monkeypatch)
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "aws").symlink_to(real)
    _v1(tmp_path / "a")
    _v1(tmp_path / "c")
    monkeypatch.setenv("PATH", os.pathsep.join(str(tmp_path / d) for d in ("a", "no-such-dir", "v2", "c")))
    monkeypatch.setattr(cli, "FALLBACK_AWS_CLI", str(tmp_path / "no-fallback" / "aws"))
    assert find_aws_cli_v2() == str(v2 / "aws")


def test_no_v2_anywhere_fails_with_each_cli_tried_and_its_version(tmp_path, monkeypatch):
    first = _v1(tmp_path / "a")
    mute = _fake(tmp_path / "b", "exit 3")
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "aws").write_text("not executable\n", encoding="utf-8")
    fallback = _fake(tmp_path / "fallback", "echo 'aws-cli/1.2.3 Python/3.9.0'")
    monkeypatch.setenv("PATH", os.pathsep.join(str(tmp_path / d) for d in ("a", "b", "c")))
    monkeypatch.setattr(cli, "FALLBACK_AWS_CLI", fallback)
    with pytest.raises(GateError) as err:
        find_aws_cli_v2()
    message = str(err.value)
    assert message.startswith(
        f"no AWS CLI v2 found: tried {first} ('{V1}'), {mute} ('exit status 3, no version printed'), "
        f"{fallback} ('aws-cli/1.2.3 Python/3.9.0'); the gate needs aws-cli/2.x: ")
    assert "install Debian's awscli package" in message and "set RUNBOOK_AWS_CLI" in message
    assert str(tmp_path / "c" / "aws") not in message  # not executable: not a candidate


def test_no_aws_at_all_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(cli, "FALLBACK_AWS_CLI", str(tmp_path / "no-such-aws"))
    with pytest.raises(GateError, match=r"^no AWS CLI found \(no aws on PATH, no .*no-such-aws\): "
                                        r"install Debian's awscli package .* or set RUNBOOK_AWS_CLI"):
        find_aws_cli_v2()


def test_a_cli_that_does_not_answer_is_passed_over(tmp_path, monkeypatch):
    hangs = _fake(tmp_path / "a", "exec /bin/sleep 30")
    fallback = _v1(tmp_path / "fallback")
    monkeypatch.setenv("PATH", str(tmp_path / "a"))
    monkeypatch.setattr(cli, "FALLBACK_AWS_CLI", fallback)
    monkeypatch.setattr(cli, "_VERSION_TIMEOUT", 0.5)
    with pytest.raises(GateError, match=rf"tried {hangs} \(`{hangs} --version` did not answer in 0.5 s\), "
                                        rf"{fallback} \('{V1}'\)"):
        find_aws_cli_v2()


def test_an_explicit_v1_fails_though_a_v2_is_found_on_path(tmp_path, monkeypatch, configured):
    _v2(DEFAULT_AWS_CLI, configured, monkeypatch)
    fake = _v1(tmp_path / "shims")
    monkeypatch.setenv("PATH", f"{tmp_path / 'shims'}{os.pathsep}/usr/bin:/bin")
    assert find_aws_cli_v2() == DEFAULT_AWS_CLI  # nothing asked for: the v2
    with pytest.raises(GateError, match=rf"^{fake} \(from argument\) is not AWS CLI v2: '{V1}'"):
        find_aws_cli_v2(fake)
    monkeypatch.setenv("RUNBOOK_AWS_CLI", fake)
    with pytest.raises(GateError, match=rf"^{fake} \(from RUNBOOK_AWS_CLI\) is not AWS CLI v2: '{V1}'"):
        find_aws_cli_v2()
    monkeypatch.setenv("RUNBOOK_AWS_CLI", "aws")  # a name: the first on PATH, the v1, refused
    with pytest.raises(GateError, match=r"\(from RUNBOOK_AWS_CLI\) is not AWS CLI v2"):
        find_aws_cli_v2()


def test_each_cli_is_asked_its_version_once(tmp_path, monkeypatch):
    calls = tmp_path / "calls"
    fake = _fake(tmp_path / "a", f"echo x >> {calls}\necho '{V1}'")
    monkeypatch.setenv("PATH", str(tmp_path / "a"))
    monkeypatch.setattr(cli, "FALLBACK_AWS_CLI", fake)  # the same program: tried once
    for _ in range(3):
        with pytest.raises(GateError, match=rf"tried {fake} \('{V1}'\); "):
            find_aws_cli_v2()
    with pytest.raises(GateError, match="from argument"):
        find_aws_cli_v2(fake)
    assert calls.read_text(encoding="utf-8") == "x\n"
