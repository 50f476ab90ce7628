"""The hostile page (tests/data/probes/hostile.md) against both tiers of the gate.

Each block of the page exits 0 only when its escape works. Run by the execution tier, every
block must fail; expanded by the static tier, none may reach the ``aws`` call that follows
success. Without the sandbox (``unconfined``), every block must succeed in both tiers. So each
probe is shown to be a real escape, and the sandbox to be what stops it.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

import runbook.gate.sandbox.sandbox as sandbox_mod
import runbook.gate.static.shell as shell_mod
from runbook.gate.sandbox.sandbox import EnvCredentials, Sandbox, SandboxWarning
from runbook.gate.snippets import extract
from runbook.gate.static.checker import StaticChecker

from .conftest import ROOT, aws_cli_path

PAGE = Path(__file__).resolve().parent / "data" / "probes" / "hostile.md"
ESCAPED = "s3://probe-escaped/"

pytestmark = [pytest.mark.requires_aws_cli, pytest.mark.requires_isolation("full")]


def probes() -> list[tuple[str, str]]:
    """(heading, code) of each block of the page, as the gate extracts them."""
    text = PAGE.read_text(encoding="utf-8")
    headings = [line[3:].strip() for line in text.splitlines() if line.startswith("## ")]
    blocks = extract(text, "hostile.md", ["dev"], "dev")
    assert len(blocks) == len(headings) > 10, "one block per probe heading"
    return [(h, b.text) for h, b in zip(headings, blocks, strict=True)]


PROBES = probes()
NAMES = [name for name, _ in PROBES]


@pytest.fixture(scope="module")
def decoys() -> Iterator[SimpleNamespace]:
    """Secrets where an engineer keeps them, a host socket and a loopback listener."""
    home = Path(f"/home/runbook-probe-{os.getpid()}")
    for rel in (".aws/credentials", ".ssh/id_ed25519", ".vault-token",
                ".terraform.d/credentials.tfrc.json"):
        (home / rel).parent.mkdir(parents=True, exist_ok=True)
        (home / rel).write_text("DECOY secret\n")
    (home / ".bashrc").write_text("# the engineer's\n")
    env_file = ROOT / ".env"
    if env_file.exists():  # never touch a real one
        env_file = ROOT / f".env.probe-{os.getpid()}"
    env_file.write_text("DECOY=1\n")
    host_tmp = Path(f"/tmp/runbook-probe-{os.getpid()}")
    host_tmp.mkdir()
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix.bind(str(home / "agent.sock"))
    unix.listen(8)
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(8)
    stop = threading.Event()

    def accept(server: socket.socket) -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                server.accept()[0].close()
            except OSError:
                continue

    threads = [threading.Thread(target=accept, args=(s,), daemon=True) for s in (unix, tcp)]
    for thread in threads:
        thread.start()
    values = {"@HOME@": str(home), "@PROJECT@": str(ROOT), "@HOSTTMP@": str(host_tmp),
              "@SOCKET@": str(home / "agent.sock"), "@PORT@": str(tcp.getsockname()[1]),
              "@ID@": str(os.getpid())}
    if env_file.name != ".env":
        values["@PROJECT@/.env"] = str(env_file)
    try:
        yield SimpleNamespace(home=home, values=values, planted=[ROOT / f"PLANTED-{os.getpid()}",
                                                                host_tmp / "PLANTED"])
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        unix.close()
        tcp.close()
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(host_tmp, ignore_errors=True)
        env_file.unlink(missing_ok=True)
        (ROOT / f"PLANTED-{os.getpid()}").unlink(missing_ok=True)


def _filled(code: str, values: dict[str, str]) -> str:
    for token in sorted(values, key=len, reverse=True):  # @PROJECT@/.env before @PROJECT@
        code = code.replace(token, values[token])
    return code


@pytest.fixture
def as_engineer(decoys: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """The gate started from the engineer's shell: HOME is the decoy home."""
    monkeypatch.setenv("HOME", str(decoys.home))
    return decoys


def _exec_results(values: dict[str, str], *, unconfined: bool,
                  monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    if unconfined:
        monkeypatch.setattr(sandbox_mod, "probe_isolation", lambda: "none")
    sb = Sandbox(aws_cli_path(), allow_no_netns=unconfined)
    with pytest.warns(SandboxWarning) if unconfined else _nothing():
        sb.start()
    with sb:
        sb.set_credentials(EnvCredentials("t", "123456789012", "eu-west-1", "AKIANOTISSUED", "x"))
        return {name: sb.run("bash", _filled(code, values), "t", timeout=30).rc
                for name, code in PROBES}


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _static_results(values: dict[str, str]) -> dict[str, bool]:
    """Which probes reached the aws call that follows their success, in the static tier."""
    reached = {}
    with StaticChecker(aws_cli_path()) as checker:
        for name, code in PROBES:
            block = f"if {{\n{_filled(code, values)}\n}} >/dev/null 2>&1; then\n  aws s3 ls {ESCAPED}{name}\nfi\n"
            _, calls = checker.check_shell(block)
            reached[name] = any(ESCAPED in " ".join(c.argv) for c in calls)
    return reached


def test_every_probe_fails_in_the_execution_tier(as_engineer, monkeypatch):
    rcs = _exec_results(as_engineer.values, unconfined=False, monkeypatch=monkeypatch)
    assert [n for n, rc in rcs.items() if rc == 0] == [], rcs
    assert not any(p.exists() for p in as_engineer.planted)
    assert (as_engineer.home / ".bashrc").read_text() == "# the engineer's\n"


def test_every_probe_fails_in_the_static_tier(as_engineer):
    reached = _static_results(as_engineer.values)
    assert [n for n, hit in reached.items() if hit] == []
    assert not any(p.exists() for p in as_engineer.planted)
    assert (as_engineer.home / ".bashrc").read_text() == "# the engineer's\n"


def test_without_the_sandbox_every_probe_escapes(as_engineer, monkeypatch):
    """The probes are real: the same blocks, unconfined, all succeed in both tiers."""
    rcs = _exec_results(as_engineer.values, unconfined=True, monkeypatch=monkeypatch)
    assert [n for n, rc in rcs.items() if rc != 0] == [], rcs
    for planted in as_engineer.planted:
        planted.unlink()
    monkeypatch.setattr(shell_mod, "confine", lambda argv, **_: list(argv))
    monkeypatch.setattr(shell_mod, "limited", lambda argv, **_: list(argv))
    reached = _static_results(as_engineer.values)
    assert [n for n, hit in reached.items() if not hit] == []
