"""A lane's processes and the lanes started while the site builds (runbook.gate.run.EarlyLanes)."""

from __future__ import annotations

import os
import stat
import threading
from concurrent.futures import Future
from pathlib import Path

from runbook.data.load import load_cached
from runbook.gate import run as gate
from runbook.gate.sandbox import moto_tuning
from runbook.gate.static import cli as cli_mod

from .conftest import require_aws_cli, require_isolation

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "runbook_data"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


def test_a_started_lane_keeps_the_processes_it_started() -> None:
    """Each process dies with the thread that started it (bubblewrap's --die-with-parent): a
    lane's checker worker must not be started from a thread that ends, or every first check
    pays for a new worker."""
    require_isolation()
    lane = gate.Lane(require_aws_cli(), DATA, "https://example.invalid/", static_only=False)
    try:
        lane.start()
        assert lane.checker is not None and lane.checker._worker is not None
        worker = lane.checker._worker
        assert worker.proc is not None and worker.proc.poll() is None and _alive(worker.proc.pid)
        assert lane.sandbox is not None and lane.sandbox._proc is not None and lane.sandbox._proc.poll() is None
        problems, calls = lane.checker.check_shell("aws sts get-caller-identity")
        assert problems == [] and [c.operation for c in calls] == ["GetCallerIdentity"]
        assert lane.checker._worker is worker and worker.proc.poll() is None  # not started again
    finally:
        lane.close()


def test_early_lanes_seed_beside_the_build_and_hand_their_work_to_the_lanes_thread() -> None:
    require_isolation()
    cli = require_aws_cli()
    catalog = load_cached(DATA)
    early = gate.EarlyLanes(1, static_only=False, aws_cli=cli)
    loaded: Future = Future()
    early.start(DATA, "https://example.invalid/", loaded)
    loaded.set_result(catalog)
    ran: list[tuple[str, set[str], bool]] = []
    errors: list[BaseException] = []

    def job(lane: gate.Lane, failed: BaseException | None) -> None:
        try:
            assert failed is None
            lane.policies = {}
            ran.append((threading.current_thread().name, set(lane.preseeded), lane.sandbox is not None))
            for env in sorted(lane.preseeded):  # the worlds seeded early, kept now (the second after a thaw)
                lane.world(env)
            assert lane.seeded == ran[0][1] and not lane.preseeded
            assert lane.sandbox is not None
            for env in sorted(lane.seeded):  # each world is there, in its own account
                listed = lane.sandbox.run("bash", "aws sqs list-queues --output text", env)
                assert listed.rc == 0 and f"kanjona-{env}-" in listed.stdout, listed.stderr
                assert lane.sandbox.credentials[env].account in listed.stdout
        except BaseException as exc:  # noqa: BLE001 - asserted in the test's thread
            errors.append(exc)
        finally:
            lane.close()
            done.set()

    done = threading.Event()
    assert early.ready(cli + "-other") == 0 and early.hand_over(1, job, cli + "-other") == 0
    assert early.ready(cli) == 1
    assert early._waiting[0].warm.wait(120)  # started and seeded before any work came
    assert early.hand_over(1, job, cli) == 1
    assert done.wait(120)
    assert errors == []
    [(thread, seeded, has_sandbox)] = ran
    assert thread != threading.current_thread().name and has_sandbox
    assert seeded == {e.name for e in catalog.environments}  # one lane: every environment
    early.close()  # nothing left to close


def test_early_lanes_not_handed_work_are_closed_with_their_processes() -> None:
    require_isolation()
    cli = require_aws_cli()
    early = gate.EarlyLanes(1, static_only=True, aws_cli=cli)
    loaded: Future = Future()
    early.start(DATA, "https://example.invalid/", loaded)
    loaded.set_result(load_cached(DATA))
    early._begin_ended()
    [waiting] = early._waiting
    lane = waiting.lane
    early.close()
    assert not waiting.thread.is_alive() and early.ready(cli) == 0
    assert lane.checker is not None and lane.checker._worker is None  # closed, its worker killed


def test_the_lanes_wanted_grow_with_the_blocks_not_with_the_cores() -> None:
    """A lane more costs a start and a first seed (~4 s): only for JOIN_MIN blocks more."""
    n = gate.JOIN_MIN
    assert gate.lanes_for(0, 8) == 0  # the cache answered for everything: nothing starts
    assert gate.lanes_for(2, 8) == 1 and gate.lanes_for(n * 2 - 1, 8) == 1
    assert gate.lanes_for(n * 2, 8) == 2 and gate.lanes_for(n * 100, 8) == 8 and gate.lanes_for(n * 100, 1) == 1
    assert gate.lanes_for(2, 8, started=2) == 2  # lanes started early are used
    assert gate.lanes_for(1, 8, started=2) == 1 and gate.lanes_for(n * 100, 2, started=7) == 2


def test_one_version_probe_answers_every_thread_that_asks(tmp_path: Path) -> None:
    script = tmp_path / "aws"
    count = tmp_path / "count"
    script.write_text(f"#!/bin/sh\necho x >> {count}\nsleep 0.3\necho 'aws-cli/2.9.9 Python/3.11'\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    answers: list[str] = []
    threads = [threading.Thread(target=lambda: answers.append(cli_mod.find_aws_cli_v2(str(script))))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == [str(script)] * 4
    assert count.read_text().count("x") == 1
    assert cli_mod.asked_for(str(script)) == (str(script), "argument")


def test_moto_tuning_keeps_what_moto_would_have_read_again() -> None:
    import moto.backends
    import moto.core.utils

    before = list(moto.backends.list_of_moto_modules())
    moto_tuning.apply()
    moto_tuning.apply()  # once per process: a second call changes nothing
    assert list(moto.backends.list_of_moto_modules()) == before and "s3" in before
    loader = moto.core.utils.create_loader()
    assert moto.core.utils.create_loader() is loader
    assert moto.core.utils.get_service_model("sqs").operation_model("ListQueues").name == "ListQueues"


def test_early_lanes_seed_only_the_environments_asked_for() -> None:
    require_isolation()
    cli = require_aws_cli()
    early = gate.EarlyLanes(1, static_only=False, aws_cli=cli, envs=["prod"])
    loaded: Future = Future()
    early.start(DATA, "https://example.invalid/", loaded)
    loaded.set_result(load_cached(DATA))
    early._begin_ended()
    [waiting] = early._waiting
    assert waiting.warm.wait(120)
    assert set(waiting.lane.preseeded) == {"prod"}
    early.close()
    assert not waiting.thread.is_alive()
