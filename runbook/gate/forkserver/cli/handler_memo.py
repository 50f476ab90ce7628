"""botocore's check that an event handler takes ``**kwargs``, memoised by the handler's code.

Every CLI driver registers ~350 handlers, and botocore runs ``inspect.getfullargspec`` on each
one: about a tenth of a command's own time. Whether a function takes ``**kwargs`` is fixed by
its code object, so the answer is kept per code object (and whether it came wrapped in a
``functools.partial``), never per handler: a key holding the handler (a closure, or a bound
method of one driver) would keep every driver alive.

Used by the fork server (``server.py``, filled while it warms up, inherited by every child) and
by the static tier's CLI worker. Runs under the CLI's own interpreter: standard library only.
"""

import functools


def install(hooks):
    """Replace ``hooks.accepts_kwargs`` (botocore's ``hooks`` module) with the memoised check."""
    original = hooks.accepts_kwargs
    if getattr(original, "memoised", False):
        return
    cache = {}

    def signature_key(func):
        f = getattr(func, "__func__", func)  # a bound method: its function
        while isinstance(f, functools.partial):
            f = f.func
        code = getattr(f, "__code__", None)
        return (code, isinstance(func, functools.partial)) if code is not None else None

    def accepts_kwargs(func):
        key = signature_key(func)
        if key is None:  # a builtin, a class, a callable object: not worth keeping
            return original(func)
        try:
            return cache[key]
        except KeyError:
            result = cache[key] = original(func)
            return result

    accepts_kwargs.memoised = True
    hooks.accepts_kwargs = accepts_kwargs
