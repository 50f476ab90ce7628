# (Not a module of the project: a template the sandbox worker fills in and puts on every
# snippet's PYTHONPATH, run by whatever Python a snippet starts; it must import nothing.)
# Loaded by every Python of a snippet (PYTHONPATH), including the CLI v2 itself (Debian runs
# it on /usr/bin/python3 with a vendored `awscli.botocore`). When a botocore session module
# is imported, its Session.create_client is wrapped so that every client, whatever
# endpoint_url it was given, talks to the sandbox's moto. Nothing is imported eagerly: a
# snippet that never touches botocore pays for one meta-path lookup per import.
# runbook sandbox: force every botocore client to the sandbox endpoint
import sys as _sys

_RUNBOOK_ENDPOINT = "@ENDPOINT@"  # the worker writes the sandbox endpoint here
_RUNBOOK_TARGETS = frozenset(("botocore.session", "awscli.botocore.session"))


def _runbook_patch(module):
    import functools
    import inspect

    session_cls = getattr(module, "Session", None)
    original = getattr(session_cls, "create_client", None)
    if original is None or getattr(original, "_runbook_forced", False):
        return
    signature = inspect.signature(original)

    @functools.wraps(original)
    def create_client(*args, **kwargs):
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError:
            kwargs["endpoint_url"] = _RUNBOOK_ENDPOINT
            return original(*args, **kwargs)
        bound.arguments["endpoint_url"] = _RUNBOOK_ENDPOINT
        return original(*bound.args, **bound.kwargs)

    create_client._runbook_forced = True
    session_cls.create_client = create_client


class _RunbookEndpointFinder:
    def find_spec(self, name, path=None, target=None):
        if name not in _RUNBOOK_TARGETS:
            return None
        for finder in _sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        exec_module = getattr(loader, "exec_module", None)
        if exec_module is None:
            return spec

        def exec_and_patch(module, _exec=exec_module):
            _exec(module)
            _runbook_patch(module)

        loader.exec_module = exec_and_patch
        return spec


for _name in _RUNBOOK_TARGETS:
    if _name in _sys.modules:
        _runbook_patch(_sys.modules[_name])
_sys.meta_path.insert(0, _RunbookEndpointFinder())
