"""The memoised check that an event handler takes **kwargs (fork server and static CLI worker):
the same answers as botocore's own, asked once per code object, holding no handler."""
from __future__ import annotations

import functools
import gc
import importlib.util
import types
import weakref
from pathlib import Path

import pytest
from botocore import compat, hooks

PATH = Path(__file__).resolve().parent.parent / "runbook" / "gate" / "forkserver" / "cli" / "handler_memo.py"


def _memo():
    spec = importlib.util.spec_from_file_location("handler_memo_under_test", PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture()
def counted():
    """A stand-in for botocore's hooks module whose original check counts its calls."""
    calls: list[str] = []

    def original(func):
        calls.append(type(func).__name__)  # not the handler: the memo must be all that could hold it
        return compat.accepts_kwargs(func)

    fake = types.SimpleNamespace(accepts_kwargs=original)
    _memo().install(fake)
    return fake, calls


def with_kwargs(a, **kwargs):
    return a


def without_kwargs(a, b=1):
    return a


class Handlers:
    def method(self, **kwargs):
        return kwargs

    def strict(self, x):
        return x

    def __call__(self, **kwargs):
        return kwargs


CASES = [with_kwargs, without_kwargs, functools.partial(with_kwargs, 1), functools.partial(without_kwargs, 1),
         Handlers().method, Handlers().strict, functools.partial(functools.partial(with_kwargs), 2),
         Handlers(), len, lambda **kw: kw, lambda: None]


@pytest.mark.parametrize("func", CASES, ids=lambda f: getattr(f, "__name__", type(f).__name__))
def test_the_same_answer_as_botocore(counted, func) -> None:
    fake, _ = counted
    try:
        expected = compat.accepts_kwargs(func)
    except TypeError:
        with pytest.raises(TypeError):
            fake.accepts_kwargs(func)
        return
    assert fake.accepts_kwargs(func) == expected
    assert fake.accepts_kwargs(func) == expected  # from the memo


def test_asked_once_per_code_object(counted) -> None:
    fake, calls = counted
    for _ in range(5):  # new bound methods, new instances, new partials: the same code
        assert fake.accepts_kwargs(Handlers().method)
        assert not fake.accepts_kwargs(Handlers().strict)
        assert fake.accepts_kwargs(functools.partial(with_kwargs, 3))
    assert len(calls) == 3
    fake.accepts_kwargs(Handlers())  # a callable object: not memoised, asked every time
    fake.accepts_kwargs(Handlers())
    assert len(calls) == 5


def test_holds_no_handler(counted) -> None:
    """A memo keyed by the handler kept every CLI driver alive (issue 12's leak)."""
    fake, _ = counted
    owner = Handlers()
    alive = weakref.ref(owner)
    fake.accepts_kwargs(owner.method)
    fake.accepts_kwargs(functools.partial(owner.strict, 1))
    del owner
    gc.collect()
    assert alive() is None


def test_installed_once_and_used_by_registration(monkeypatch) -> None:
    calls: list[str] = []

    def original(func):
        calls.append(type(func).__name__)
        return compat.accepts_kwargs(func)

    monkeypatch.setattr(hooks, "accepts_kwargs", original)
    memo = _memo()
    memo.install(hooks)
    first = hooks.accepts_kwargs
    memo.install(hooks)
    assert hooks.accepts_kwargs is first  # not wrapped twice
    emitter = hooks.HierarchicalEmitter()
    for _ in range(3):
        emitter.register("before-call.s3", Handlers().method)
    with pytest.raises(ValueError, match="must accept keyword arguments"):
        emitter.register("before-call.s3", Handlers().strict)
    assert len(calls) == 2
