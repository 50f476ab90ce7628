"""A fork server ("zygote") for the real AWS CLI v2: import it once, run each command in a fork.

Debian's ``/usr/bin/aws`` is a five-line script run by ``/usr/bin/python3`` that imports
``awscli.clidriver`` and calls its ``main()``. Nearly all of its ~450 ms is that import. This
process pays it once: it imports awscli, builds (and throws away) one driver so that every
lazily imported module is loaded, then listens on a unix socket. For each request it forks;
the child takes over the client's file descriptors, working directory, umask and whole
environment, and then executes **the real script itself** (compiled from the CLI's path) as
``__main__``, with the interpreter's exit sequence after it. Each command gets a fresh driver
and session from the real code path, in a pristine copy of a process that never ran one: no
state leaks from one command to the next.

What makes a forked child differ from a fresh ``/usr/bin/aws``, and how it is handled:

* **Import-time reads of the environment.** While awscli is imported and warmed up,
  ``os.environ`` records which variables module-level code reads. ``AWS_DATA_PATH`` (set by
  ``awscli/__init__``) is recomputed in the child from the client's environment; ``HOME`` is
  handled as below; every other variable read at import time, plus those the interpreter and C
  libraries read at start-up (``LANG``, ``LC_*``, ``TZ``, ``PYTHON*``, ``LD_*``...), must have
  the same value (or be absent) in the client's environment, or the request is refused and the
  client runs the real CLI instead.
* **Values derived from HOME, TMPDIR or the working directory** at import time (the alias
  file's default path, ``Loader.CUSTOMER_DATA_PATH``, the SSO and credential cache dirs,
  ``site.USER_BASE``...). The zygote runs with a HOME, TMPDIR and cwd of its own, then scans
  every loaded module (globals, classes, function defaults, module-level instances) for values
  under them and rewrites those in each child to the client's. A module that read HOME at import
  but holds no value the scan can find makes the zygote refuse every request.
* **Interpreter state.** The child rebuilds ``sys.stdin/stdout/stderr`` on its new fds the way
  CPython does at start-up, sets ``sys.argv``, ``sys.path[0]`` (the script's directory) and a
  fresh ``__main__``, restores the signal dispositions and ``warnings`` filters of a fresh
  interpreter, and ends like one: ``SystemExit`` handling, non-daemon threads joined, atexit
  handlers, standard streams flushed (exit 120 if stdout cannot be), ``os._exit``.
* **Anything printed while importing** would be printed by every real run and by no child:
  the zygote refuses to serve if the import or the warm-up wrote a byte to stdout or stderr.

Three caches make a child faster than a fresh process without changing what it computes. The
check that an event handler takes ``**kwargs`` is memoised by the handler's code
(``handler_memo.py``; filled by the warm-up). The other two apply only to the first ``Loader``
a child creates, and only when its search paths are the ones the zygote warmed, with the same
directories present:

* the directory scans of botocore's ``Loader`` (``list_available_services`` & co., ~2,400
  ``listdir`` calls per command, ~30 ms) start filled, as if this Loader had already made them;
* JSON data files parsed by the zygote (endpoints, partitions, and the models of the services
  given with ``--preload``) are handed out by ``load_file`` once each, when the file's size and
  mtime are unchanged: exactly one fresh, never-used object per load, as from ``json.loads``.

Protocol (unix stream socket, with client.py): see protocol.py, next to this file.

Usage: ``<the CLI script's interpreter> server.py SOCKET CLI_SCRIPT [--preload svc,svc]``.
It prints ``ready``
on stdout when it listens (or exits non-zero, with the reason on stderr), and exits when its
stdin reaches EOF (the sandbox worker is gone) or on SIGTERM, killing its children.

This file runs under the CLI's own interpreter (Debian's /usr/bin/python3): standard library
and awscli only, nothing from the repository's virtualenv.
"""

import os
import sys

import handler_memo  # next to this file (sys.path[0]), before sys.path[0] becomes the CLI's
import protocol

# Before anything else is imported: the real script runs with its own directory as
# sys.path[0], never this file's (the repository's runbook/ holds modules called errors,
# model, schema... that must never shadow anything the CLI imports).
if __name__ == "__main__" and len(sys.argv) >= 3:
    sys.path[0] = os.path.dirname(os.path.realpath(sys.argv[2]))


# -- import-time environment reads -------------------------------------------------------


class _EnvReadRecorder:
    """While installed, os.environ/os.environb remember which keys module-level code reads."""

    def __init__(self):
        self.reads = {}  # key -> set of module names reading it at import time
        self.iterated = set()  # modules that iterated the whole environment at import time
        self._patched = []

    @staticmethod
    def _importing_module():
        frame = sys._getframe(1)
        while frame is not None:
            if frame.f_code.co_name == "<module>":
                name = frame.f_globals.get("__name__")
                if name != "__main__":
                    return name
            frame = frame.f_back
        return None

    def install(self):
        if self._patched:
            return
        recorder = self
        for env in (os.environ, os.environb):
            base = type(env)

            class Recording(base):
                def __getitem__(self, key, _base=base):
                    module = recorder._importing_module()
                    if module is not None:
                        name = key.decode("utf-8", "surrogateescape") if isinstance(key, bytes) else key
                        recorder.reads.setdefault(name, set()).add(module)
                    return _base.__getitem__(self, key)

                def __iter__(self, _base=base):
                    module = recorder._importing_module()
                    if module is not None:
                        recorder.iterated.add(module)
                    return _base.__iter__(self)

            self._patched.append((env, base))
            env.__class__ = Recording

    def uninstall(self):
        for env, base in self._patched:
            env.__class__ = base
        self._patched.clear()


_RECORDER = _EnvReadRecorder()
if __name__ == "__main__":
    _RECORDER.install()  # from here on: our own imports too, then awscli's

import fcntl  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import selectors  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import stat  # noqa: E402
import time  # noqa: E402
import types  # noqa: E402
import warnings  # noqa: E402

RESERVED_FDS = 300  # library descriptors opened during the import land at or above this
# Loader methods whose results are lists of names read from the data directories.
SCAN_METHODS = {
    "list_available_services": ("type_name",),
    "list_api_versions": ("service_name", "type_name"),
    "determine_latest_version": ("service_name", "type_name"),
}
MODEL_TYPES = ("service-2", "paginators-1", "waiters-2", "endpoint-rule-set-1")
KILL_GRACE = 0.25  # seconds between SIGTERM and SIGKILL when the client went away

# Read by the interpreter or C libraries at start-up, outside os.environ: a child's must match.
STARTUP_VARS = frozenset({"LANG", "LANGUAGE", "TZ", "GLIBC_TUNABLES", "POSIXLY_CORRECT"})
STARTUP_PREFIXES = ("LC_", "PYTHON", "LD_", "MALLOC_", "OPENSSL_")
# Read at import time but recomputed in every child: not part of the fingerprint.
RECOMPUTED_VARS = frozenset({"HOME", "AWS_DATA_PATH"})

_INITIAL_SIGNALS = {}  # signal -> disposition of a fresh interpreter (recorded at start)
for _sig in signal.valid_signals():
    try:
        _INITIAL_SIGNALS[_sig] = signal.getsignal(_sig)
    except (OSError, ValueError):
        pass
_INITIAL_WARNING_FILTERS = list(warnings.filters)
_INITIAL_RLIMITS = {}
for _name in dir(resource):
    if _name.startswith("RLIMIT_"):
        try:
            _INITIAL_RLIMITS[getattr(resource, _name)] = resource.getrlimit(getattr(resource, _name))
        except (OSError, ValueError):
            pass
# `python -u` / PYTHONUNBUFFERED (not in sys.flags): stdout then sits on a raw FileIO.
_UNBUFFERED_STDIO = (isinstance(getattr(sys.__stdout__, "buffer", None), io.RawIOBase)
                     if sys.__stdout__ is not None else bool(os.environ.get("PYTHONUNBUFFERED")))


def _log(message):
    try:
        sys.stderr.write(f"aws-zygote[{os.getpid()}]: {message}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


# -- values derived from the zygote's HOME / TMPDIR / cwd ---------------------------------


class _Rewriter:
    """Finds values under the zygote's own directories and maps them to a client's."""

    MAX_DEPTH = 3

    def __init__(self, prefixes):
        # [(kind, prefix)], longest first so that nested prefixes resolve to the closest one
        self.prefixes = sorted(((k, p.rstrip("/") or "/") for k, p in prefixes.items() if p),
                               key=lambda kp: -len(kp[1]))
        self.locations = []  # (holder, how, key, module name)
        self._seen = set()

    def _match(self, text):
        for kind, prefix in self.prefixes:
            if text == prefix or text.startswith(prefix + "/"):
                return kind, prefix
        return None

    def contains(self, value, depth=0):
        if isinstance(value, str):
            return self._match(value) is not None
        if _is_pure_path(value):
            return self._match(str(value)) is not None
        if depth >= self.MAX_DEPTH:
            return False
        if isinstance(value, (list, tuple, set, frozenset)):
            return any(self.contains(v, depth + 1) for v in value)
        if isinstance(value, dict):
            return any(self.contains(v, depth + 1) for v in value.values())
        return False

    def rewrite(self, value, mapping, depth=0):
        if isinstance(value, str):
            hit = self._match(value)
            if hit is None:
                return value
            kind, prefix = hit
            return mapping[kind] + value[len(prefix):]
        if _is_pure_path(value):
            new = self.rewrite(str(value), mapping, depth)
            return value if new == str(value) else type(value)(new)
        if depth >= self.MAX_DEPTH:
            return value
        if isinstance(value, list):
            value[:] = [self.rewrite(v, mapping, depth + 1) for v in value]
            return value
        if isinstance(value, dict):
            for k in list(value):
                value[k] = self.rewrite(value[k], mapping, depth + 1)
            return value
        if isinstance(value, set):
            new = {self.rewrite(v, mapping, depth + 1) for v in value}
            value.clear()
            value.update(new)
            return value
        if type(value) in (tuple, frozenset):
            return type(value)(self.rewrite(v, mapping, depth + 1) for v in value)
        if isinstance(value, tuple) and hasattr(value, "_make"):  # a namedtuple
            return value._make(self.rewrite(v, mapping, depth + 1) for v in value)
        return value

    def scan(self):
        skip = {id(sys), id(os), id(sys.modules.get("__main__"))}
        for name, module in list(sys.modules.items()):
            if module is None or id(module) in skip or id(module) in self._seen:
                continue
            self._seen.add(id(module))
            self._scan_namespace(module, "attr", vars(module), name, depth=0)

    def _scan_namespace(self, holder, how, namespace, module_name, depth):
        for key, value in list(namespace.items()):
            dunder = isinstance(key, str) and key.startswith("__") and key.endswith("__")
            if isinstance(value, os._Environ):
                continue
            if not dunder and self.contains(value):
                self.locations.append((holder, how, key, module_name))
            try:
                self._scan_children(value, module_name, depth)
            except Exception:  # noqa: BLE001 - an odd object (a lazy proxy...): not ours to hold paths
                pass

    def _scan_children(self, value, module_name, depth):
        if id(value) in self._seen or depth > 2:
            return
        if isinstance(value, (staticmethod, classmethod)):
            value = value.__func__
        if isinstance(value, types.FunctionType):
            self._seen.add(id(value))
            if value.__defaults__ and self.contains(value.__defaults__):
                self.locations.append((value, "defaults", None, module_name))
            if value.__kwdefaults__ and self.contains(value.__kwdefaults__):
                self.locations.append((value, "kwdefaults", None, module_name))
            return
        if isinstance(value, type):
            self._seen.add(id(value))
            self._scan_namespace(value, "attr", dict(vars(value)), module_name, depth + 1)
            return
        if depth > 0 or isinstance(value, (types.ModuleType, types.BuiltinFunctionType, str, bytes,
                                           int, float, list, tuple, dict, set, frozenset)):
            return
        try:
            namespace = vars(value)
        except TypeError:
            return
        if isinstance(namespace, dict):  # a module-level instance: its attributes, one level
            self._seen.add(id(value))
            self._scan_namespace(value, "attr", namespace, module_name, depth + 1)

    def modules_with_locations(self):
        return {m for *_, m in self.locations}

    def apply(self, mapping):
        for holder, how, key, _module in self.locations:
            if how == "attr":
                setattr(holder, key, self.rewrite(getattr(holder, key), mapping))
            elif how == "defaults":
                holder.__defaults__ = tuple(self.rewrite(v, mapping) for v in holder.__defaults__)
            elif how == "kwdefaults":
                holder.__kwdefaults__ = {k: self.rewrite(v, mapping)
                                         for k, v in holder.__kwdefaults__.items()}

    def describe(self):
        out = []
        for holder, how, key, module in self.locations:
            name = getattr(holder, "__qualname__", None) or getattr(holder, "__name__", None) \
                or type(holder).__name__
            out.append(f"{module}:{name}.{key}" if how == "attr" else f"{module}:{name} {how}")
        return out


def _is_pure_path(value):
    pathlib = sys.modules.get("pathlib")
    return pathlib is not None and isinstance(value, pathlib.PurePath)


# -- warming up, and what children inherit from it ---------------------------------------


def _warm_up(clidriver, preload):
    """Import and exercise the CLI as a command would (nothing runs, nothing connects), and
    prepare the Loader template children start from."""
    handler_memo.install(sys.modules["botocore.hooks"])  # before the first driver registers
    driver = clidriver.create_clidriver()
    table = driver._get_command_table()
    driver._get_argument_table()
    loaders = sys.modules["botocore.loaders"]
    loaded = []  # data files the warm-up loads: a command loads them too
    original_load_file = loaders.JSONFileLoader.load_file

    def recording_load_file(self, file_path):
        loaded.append(file_path)
        return original_load_file(self, file_path)

    loaders.JSONFileLoader.load_file = recording_load_file
    try:
        # An operation's argument table (paginators, waiters) and a client (endpoints, rule
        # sets): lazily imported modules and the Loader's scans. Best effort: a CLI that
        # differs here only loses some speed.
        try:
            _ = table["sts"]._get_command_table()["get-caller-identity"].arg_table
            driver.session.create_client(
                "sts", region_name="us-east-1", endpoint_url="http://127.0.0.1:9",
                aws_access_key_id="AKIDZYGOTEWARMUP", aws_secret_access_key="warm-up")
        except Exception as exc:  # noqa: BLE001
            _log(f"warm-up: could not exercise an operation ({type(exc).__name__}: {exc})")
        try:
            session_loader = driver.session.get_component("data_loader")
            data_path = driver.session.get_config_variable("data_path")
        except Exception as exc:  # noqa: BLE001
            _log(f"warm-up: no Loader template ({type(exc).__name__}: {exc})")
            return None
    finally:
        loaders.JSONFileLoader.load_file = original_load_file
    scan_keys = [k for k in session_loader._cache if k and k[0] in SCAN_METHODS]
    return _LoaderTemplate(loaders, data_path, scan_keys, loaded, preload)


class _LoaderTemplate:
    """Results a fresh botocore Loader would compute, computed once, for a child's first Loader."""

    def __init__(self, loaders, data_path, scan_keys, loaded, preload):
        self.loaders = loaders
        template = loaders.create_loader(data_path)  # as the session makes its data_loader
        self.search_paths = list(template.search_paths)
        self.dirs = [os.path.isdir(p) for p in self.search_paths]
        self.extras_types = list(template.extras_types)
        self.scans = {}
        for key in scan_keys:
            call = _key_to_call(key)
            if call is None:
                continue
            args, kwargs = call
            try:
                getattr(template, key[0])(*args, **kwargs)
            except Exception:  # noqa: BLE001 - not cached by the Loader either
                continue
            if key in template._cache:
                self.scans[key] = template._cache[key]
        # Which files a command of the preloaded services loads: ask a throwaway Loader.
        paths = list(loaded)
        original_load_file = loaders.JSONFileLoader.load_file

        def recording_load_file(file_loader, file_path):
            paths.append(file_path)
            return original_load_file(file_loader, file_path)

        probe = loaders.create_loader(data_path)
        probe.file_loader.load_file = recording_load_file.__get__(probe.file_loader)
        for service in preload:
            for type_name in MODEL_TYPES:
                try:
                    probe.load_service_model(service, type_name)
                except Exception:  # noqa: BLE001 - a service without waiters...
                    pass
        del probe
        # Parsed afresh (never handed to anyone here), by the Loader's own code.
        self.files = {}
        parser = loaders.JSONFileLoader()
        for path in dict.fromkeys(paths):
            before = _file_id(path + ".json")
            data = parser.load_file(path)
            if before is not None and data is not None and _file_id(path + ".json") == before:
                self.files[path] = (before, data)

    def install(self, to_client):
        """In a child: the first Loader created gets the scans and the parsed files."""
        loaders = self.loaders
        cls = loaders.Loader
        original_init = cls.__init__
        template = self

        def __init__(self, *args, **kwargs):
            cls.__init__ = original_init  # one Loader only; every later one is untouched
            original_init(self, *args, **kwargs)
            template._prefill(self, to_client)

        cls.__init__ = __init__

    def _prefill(self, loader, to_client):
        loaders = self.loaders
        debug = os.environ.get("RUNBOOK_AWS_ZYGOTE_DEBUG")
        if loader.search_paths != [to_client(p) for p in self.search_paths]:
            miss = "other search paths"
        elif [os.path.isdir(p) for p in loader.search_paths] != self.dirs:
            miss = "other data directories exist"
        elif (type(loader.file_loader) is not loaders.JSONFileLoader
              or list(loader.extras_types) != self.extras_types):
            miss = "another kind of Loader"
        else:
            miss = None
        if debug:
            sys.stderr.write(f"aws-zygote: Loader not prepared: {miss}\n" if miss else
                             f"aws-zygote: Loader prepared ({len(self.scans)} scans, "
                             f"{len(self.files)} parsed files)\n")
        if miss:
            return
        loader._cache.update(self.scans)
        files = dict(self.files)
        original = loader.file_loader.load_file
        logger = loaders.logger

        def load_file(file_path):
            entry = files.pop(file_path, None)  # each parsed object is handed out once
            if entry is not None and _file_id(file_path + ".json") == entry[0]:
                logger.debug("Loading JSON file: %s", file_path + ".json")
                return entry[1]
            return original(file_path)

        loader.file_loader.load_file = load_file


def _key_to_call(key):
    """The (args, kwargs) that made an ``instance_cache`` key: positional arguments, then the
    keyword arguments flattened in name order. None when ambiguous."""
    params = SCAN_METHODS[key[0]]
    rest = list(key[1:])
    found = None
    for npos in range(len(params) + 1):
        pos, flat = rest[:npos], rest[npos:]
        names = flat[0::2]
        if (len(flat) % 2 == 0 and len(pos) + len(names) == len(params)
                and names == sorted(names) and set(names) == set(params[npos:])):
            if found is not None:
                return None
            found = (pos, dict(zip(names, flat[1::2], strict=True)))
    return found


def _rlim_above(a, b):
    infinity = resource.RLIM_INFINITY
    if a == b or b == infinity:
        return False
    return a == infinity or a > b


def _file_id(path):
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _tasks():
    try:
        return os.listdir("/proc/self/task")
    except OSError:
        return ["?"]


# -- the zygote ---------------------------------------------------------------------------


class _Conn:
    __slots__ = ("sock", "buf", "fds", "pid", "pidfd", "kill_at", "open")

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.fds = []
        self.pid = None
        self.pidfd = None
        self.kill_at = None
        self.open = True


class Zygote:
    def __init__(self, socket_path, cli_path, preload=()):
        self.socket_path = socket_path
        self.cli_path = cli_path
        self.preload = tuple(preload)
        self.template = None  # _LoaderTemplate
        self.cli_code = None
        self.fingerprint = {}  # var -> value in the zygote's start-up environment (None: unset)
        self.startup_env = dict(os.environ)
        self.prefixes = {
            "home": os.path.expanduser("~"),
            "tmp": os.environ.get("TMPDIR", ""),
            "cwd": os.getcwd(),
        }
        self.rewriter = None
        self.refusal = None  # when set, every request is answered "F" with it
        self.selector = None
        self.listener = None
        self.conns = set()  # connections still open or with a child still running
        self.served = 0
        self.fallbacks = 0
        self.warm_seconds = 0.0
        self.import_reads = {}
        self.runtime_fds = frozenset()

    # -- start-up ------------------------------------------------------------------------

    def warm(self):
        started = time.monotonic()
        with open(self.cli_path, "rb") as f:
            source = f.read()
        # Compiled exactly as the interpreter compiles a script it is given.
        self.cli_code = compile(source, self.cli_path, "exec", dont_inherit=True)

        recorder = _RECORDER
        captured = _CapturedOutput()
        before = set(_open_fds())
        recorder.install()
        captured.start()
        # Descriptors that libraries open while importing (awscrt keeps /dev/urandom open) stay
        # open in every child at the same numbers: push them above the numbers shells hand out.
        placeholders = _reserve_fds(RESERVED_FDS)
        try:
            import awscli.clidriver

            self.template = _warm_up(awscli.clidriver, self.preload)
        finally:
            for fd in placeholders:
                _close(fd)
            printed = captured.stop()
            recorder.uninstall()
            tempfile = sys.modules.get("tempfile")
            if tempfile is not None:
                tempfile.tempdir = None  # a fresh interpreter has not looked TMPDIR up yet
        if printed:
            raise SystemExit(f"importing awscli printed something ({printed[:300]!r}): every real "
                             "run prints it and no forked child would")
        if recorder.iterated:
            raise SystemExit("module-level code iterated the whole environment at import time "
                             f"({sorted(recorder.iterated)}): cannot tell what a child needs")
        self.import_reads = {k: sorted(v) for k, v in recorder.reads.items()}
        self.runtime_fds = frozenset(set(_open_fds()) - before)

        keys = {k for k in recorder.reads if k not in RECOMPUTED_VARS}
        keys |= {k for k in self.startup_env if _is_startup_var(k)}
        keys |= STARTUP_VARS
        self.fingerprint = {k: self.startup_env.get(k) for k in sorted(keys)}

        import site

        if site.ENABLE_USER_SITE and site.USER_SITE and os.path.isdir(site.USER_SITE):
            raise SystemExit(f"the fork server's own user site-packages exists ({site.USER_SITE}): "
                             "give it an empty HOME")
        self.rewriter = _Rewriter(self.prefixes)
        self.rewriter.scan()
        home_readers = {m for m in recorder.reads.get("HOME", ())}
        found = self.rewriter.modules_with_locations()
        hidden = sorted(m for m in home_readers if not _same_module(m, found))
        if hidden:
            self.refusal = (f"modules read HOME at import time but hold no value the zygote can "
                            f"rewrite: {hidden}")
            _log("refusing every request: " + self.refusal)

        # A fresh interpreter's warnings state: nothing shown yet, default filters.
        warnings.filters[:] = _INITIAL_WARNING_FILTERS
        warnings._filters_mutated()
        for module in list(sys.modules.values()):
            registry = getattr(module, "__warningregistry__", None)
            if isinstance(registry, dict):
                registry.clear()
        import threading

        if threading.active_count() != 1 or len(_tasks()) > 1:
            raise SystemExit(f"threads running after warm-up ({threading.enumerate()}, "
                             f"{len(_tasks())} tasks): cannot fork")
        import gc

        gc.collect()
        gc.freeze()  # children do not scan (or dirty) the zygote's objects in their collections
        self.warm_seconds = time.monotonic() - started

    def listen(self):
        try:
            os.unlink(self.socket_path)
        except FileNotFoundError:
            pass
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.socket_path)
        os.chmod(self.socket_path, 0o600)
        self.listener.listen(128)
        self.listener.setblocking(False)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.listener, selectors.EVENT_READ, ("listen", None))
        self.selector.register(0, selectors.EVENT_READ, ("stdin", None))

    # -- the loop ------------------------------------------------------------------------

    def serve(self):
        while True:
            timeout = self._next_timeout()
            for key, _ in self.selector.select(timeout):
                what, conn = key.data
                if what == "listen":
                    self._accept()
                elif what == "stdin":
                    try:
                        data = os.read(0, 4096)
                    except OSError:
                        data = b""
                    if not data:
                        return
                elif what == "conn":
                    self._readable(conn)
                elif what == "child":
                    self._reap(conn)
            self._run_timers()

    def shutdown(self):
        for conn in list(self.conns):
            if conn.pid is not None:
                _kill(conn.pid, signal.SIGKILL)
        for conn in list(self.conns):
            if conn.pid is not None:
                try:
                    os.waitpid(conn.pid, 0)
                except ChildProcessError:
                    pass
                conn.pid = None
        try:
            os.unlink(self.socket_path)
        except OSError:
            pass

    def _next_timeout(self):
        deadlines = [c.kill_at for c in self.conns if c.kill_at is not None]
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - time.monotonic())

    def _run_timers(self):
        now = time.monotonic()
        for conn in list(self.conns):
            if conn.kill_at is not None and conn.kill_at <= now and conn.pid is not None:
                _kill(conn.pid, signal.SIGKILL)
                conn.kill_at = None

    def _accept(self):
        while True:
            try:
                sock, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                _log(f"accept failed: {exc}")
                return
            sock.setblocking(False)
            conn = _Conn(sock)
            self.conns.add(conn)
            self.selector.register(sock, selectors.EVENT_READ, ("conn", conn))

    def _readable(self, conn):
        if conn.pid is None:  # still reading the request
            try:
                data, fds, flags, _ = socket.recv_fds(conn.sock, 1 << 16, protocol.MAX_FDS + 3,
                                                      socket.MSG_CMSG_CLOEXEC)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data, fds, flags = b"", [], 0
            conn.fds.extend(fds)
            if flags & socket.MSG_CTRUNC:
                self._refuse(conn, "too many file descriptors")
                return
            if not data:
                self._drop(conn)
                return
            conn.buf += data
            if len(conn.buf) >= protocol.HEADER_SIZE:
                magic, kind, length = protocol.parse_header(conn.buf)
                if magic != protocol.MAGIC or length > protocol.MAX_REQUEST:
                    self._drop(conn)
                    return
                start = protocol.HEADER_SIZE
                if len(conn.buf) >= start + length:
                    payload = bytes(conn.buf[start:start + length])
                    forwarded = bytes(conn.buf[start + length:])  # signals sent at once
                    conn.buf = bytearray()
                    if kind == protocol.KIND_STATUS:
                        self._status(conn)
                    elif kind == protocol.KIND_RUN:
                        self._start(conn, payload, forwarded)
                    else:
                        self._drop(conn)
            return
        # A command is running: signal numbers to forward, or EOF (the client is gone).
        try:
            data = conn.sock.recv(256)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._close_sock(conn)
            if conn.pid is not None:
                _kill(conn.pid, signal.SIGTERM)
                conn.kill_at = time.monotonic() + KILL_GRACE
            return
        for sig in data:
            if conn.pid is not None and sig in _INITIAL_SIGNALS:
                _kill(conn.pid, sig)

    def _status(self, conn):
        info = {
            "pid": os.getpid(),
            "served": self.served,
            "fallbacks": self.fallbacks,
            "children": sorted(c.pid for c in self.conns if c.pid is not None),
            "warm_seconds": round(self.warm_seconds, 3),
            "refusal": self.refusal,
            "fingerprint": sorted(self.fingerprint),
            "import_reads": self.import_reads,
            "rewritten": self.rewriter.describe() if self.rewriter else [],
            "prefilled_scans": len(self.template.scans) if self.template else 0,
            "preparsed_files": len(self.template.files) if self.template else 0,
        }
        self._send_and_drop(conn, protocol.STATUS + json.dumps(info).encode())

    def _refuse(self, conn, reason):
        self.fallbacks += 1
        self._send_and_drop(conn, protocol.DECLINED + reason.encode("utf-8", "replace"))

    def _send_and_drop(self, conn, data):
        try:
            conn.sock.setblocking(True)
            conn.sock.settimeout(5)
            conn.sock.sendall(data)
        except OSError:
            pass
        self._drop(conn)

    def _close_sock(self, conn):
        if conn.open:
            try:
                self.selector.unregister(conn.sock)
            except (KeyError, ValueError):
                pass
            conn.sock.close()
            conn.open = False

    def _drop(self, conn):
        for fd in conn.fds:
            _close(fd)
        conn.fds = []
        self._close_sock(conn)
        if conn.pid is None:
            self.conns.discard(conn)

    def _start(self, conn, payload, forwarded=b""):
        try:
            request = _parse_run(payload)
        except (ValueError, IndexError) as exc:
            self._refuse(conn, f"bad request: {exc}")
            return
        if len(request["fdnums"]) != len(conn.fds):
            self._refuse(conn, f"{len(conn.fds)} fds for {len(request['fdnums'])} numbers")
            return
        clash = sorted(set(request["fdnums"]) & self.runtime_fds)
        if clash:
            self._refuse(conn, f"descriptors {clash} are the CLI libraries' in the fork server")
            return
        limits, reason = self._limits(request)
        reason = self.refusal or reason or self._mismatch(request["env"])
        if reason:
            self._refuse(conn, reason)
            return
        request["rlimits"] = limits
        # Signals wait (blocked) until the child has a fresh interpreter's dispositions.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        pid = os.fork()
        if pid == 0:
            try:
                self._child(conn, request)
            except BaseException:  # our bug, not the command's: say so where the user looks
                try:
                    import traceback

                    os.write(2, ("aws (runbook fork server): cannot start the command:\n"
                                 + traceback.format_exc()).encode("utf-8", "replace"))
                except BaseException:
                    pass
            finally:
                os._exit(255)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        self.served += 1
        for fd in conn.fds:
            _close(fd)
        conn.fds = []
        conn.pid = pid
        conn.pidfd = os.pidfd_open(pid)
        self.selector.register(conn.pidfd, selectors.EVENT_READ, ("child", conn))
        try:
            conn.sock.send(protocol.ACCEPTED)
        except OSError:
            pass  # the client is gone: the next read sees EOF and stops the child
        for sig in forwarded:
            if sig in _INITIAL_SIGNALS:
                _kill(pid, sig)

    def _limits(self, request):
        """Resource limits a child must set (or a reason why it cannot have the client's)."""
        changes = {}
        for res, (soft, hard) in request["rlimits"].items():
            own = _INITIAL_RLIMITS.get(res)
            if own is None or own == (soft, hard):
                continue
            if _rlim_above(hard, own[1]):
                return None, f"resource limit {res} is above the fork server's"
            if res == resource.RLIMIT_NOFILE and self.runtime_fds and soft != resource.RLIM_INFINITY \
                    and soft <= max(self.runtime_fds):
                return None, "the open-files limit is below the CLI libraries' descriptors"
            changes[res] = (soft, hard)
        return changes, None

    def _mismatch(self, env):
        for key, value in self.fingerprint.items():
            if env.get(key) != value:
                return f"{key} differs from the fork server's start-up environment"
        for key in env:
            if _is_startup_var(key) and key not in self.fingerprint:
                return f"{key} is set (read by the interpreter at start-up)"
        if _user_site_exists(env):
            return "a user site-packages directory exists under the client's HOME"
        return None

    def _reap(self, conn):
        try:
            _, status = os.waitpid(conn.pid, 0)
        except ChildProcessError:
            status = 255 << 8
        self.selector.unregister(conn.pidfd)
        os.close(conn.pidfd)
        conn.pidfd = None
        conn.pid = None
        conn.kill_at = None
        if conn.open:
            try:
                conn.sock.setblocking(True)
                conn.sock.settimeout(5)
                conn.sock.sendall(protocol.result(status))
            except OSError:
                pass
        self._drop(conn)

    # -- in the child --------------------------------------------------------------------

    def _child(self, conn, request):
        # Nothing of the zygote's may survive into the command: its sockets, pidfds and
        # selector go before the client's descriptors are put in place.
        received = list(zip(request["fdnums"], conn.fds, strict=True))
        self.selector.close()
        self.listener.close()
        for other in list(self.conns):
            if other.open:
                other.sock.close()
                other.open = False
            if other.pidfd is not None:
                _close(other.pidfd)
                other.pidfd = None
        _install_fds(received, self.runtime_fds)
        # A fresh interpreter's dispositions, with what the client ignores (an exec keeps
        # ignored signals ignored: `aws ... &` in a script ignores SIGINT and SIGQUIT).
        for sig, disposition in _INITIAL_SIGNALS.items():
            if sig in (signal.SIGKILL, signal.SIGSTOP):
                continue
            if sig in request["sigign"]:
                disposition = signal.SIG_IGN
            try:
                if signal.getsignal(sig) is not disposition:
                    signal.signal(sig, disposition)
            except (OSError, ValueError, TypeError):
                pass
        signal.set_wakeup_fd(-1)
        for res, limits in request["rlimits"].items():
            resource.setrlimit(res, limits)
        os.umask(request["umask"])
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        _recompute_awscli_data_path()
        mapping = {
            "home": os.path.expanduser("~"),
            "tmp": os.environ.get("TMPDIR", "") or "/tmp",
            "cwd": os.getcwd(),
        }
        self.rewriter.apply(mapping)
        if self.template is not None:
            self.template.install(lambda path: self.rewriter.rewrite(path, mapping))
        tempfile = sys.modules.get("tempfile")
        if tempfile is not None:
            tempfile.tempdir = None
        _reset_stdio()
        sys.argv = [self.cli_path, *request["argv"]]
        sys.orig_argv = [sys.executable, self.cli_path, *request["argv"]]
        os._exit(_run_as_main(self.cli_path, self.cli_code, request["sigmask"]))


# -- child helpers ------------------------------------------------------------------------


def _install_fds(received, keep):
    """Make the client's descriptors (and the libraries' ``keep``) the only ones open."""
    open_now = _open_fds()
    high = max([*open_now, *(num for num, _ in received), 2]) + 1
    moved = [(num, fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, high)) for num, fd in received]
    for fd in open_now:
        if fd < high and fd not in keep:
            _close(fd)
    for num, fd in moved:
        os.dup2(fd, num, inheritable=True)
        os.close(fd)


def _open_fds():
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        names = [str(fd) for fd in range(1024)]
    fds = []
    for name in names:
        fd = int(name)
        try:
            os.fstat(fd)
        except OSError:
            continue  # the listing's own descriptor, gone by now
        fds.append(fd)
    return sorted(fds)


def _reserve_fds(limit):
    """Occupy every free descriptor number below ``limit``; returns them (to close later)."""
    taken = set(_open_fds())
    null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    out = [null]
    for fd in range(3, limit):
        if fd not in taken and fd != null:
            os.dup2(null, fd, inheritable=False)
            out.append(fd)
    return out


def _recompute_awscli_data_path():
    """What ``awscli/__init__`` does to AWS_DATA_PATH at import time, for this environment."""
    import awscli

    paths = []
    if "AWS_DATA_PATH" in os.environ:
        for path in os.environ["AWS_DATA_PATH"].split(os.pathsep):
            path = os.path.expandvars(path)
            path = os.path.expanduser(path)
            paths.append(path)
    paths.append(os.path.join(os.path.dirname(os.path.abspath(awscli.__file__)), "data"))
    os.environ["AWS_DATA_PATH"] = os.pathsep.join(paths)
    awscli._awscli_data_path = paths


_OLD_STREAMS = []  # never collected: their finalizers must not touch the new descriptors


def _reset_stdio():
    """sys.stdin/stdout/stderr on fds 0/1/2 as CPython's create_stdio() makes them."""
    template = {name: getattr(sys, f"__{name}__") or getattr(sys, name)
                for name in ("stdin", "stdout", "stderr")}
    _OLD_STREAMS.extend([sys.stdin, sys.stdout, sys.stderr,
                         sys.__stdin__, sys.__stdout__, sys.__stderr__])
    buffered = not _UNBUFFERED_STDIO
    streams = {}
    for fd, name, write in ((0, "stdin", False), (1, "stdout", True), (2, "stderr", True)):
        try:
            os.fstat(fd)
        except OSError:
            streams[name] = None
            continue
        buffering = 0 if (not buffered and write) else -1
        buf = open(fd, "wb" if write else "rb", buffering, closefd=False)
        raw = buf.raw if buffering else buf
        try:
            raw.name = f"<{name}>"
        except AttributeError:
            pass
        isatty = raw.isatty()
        tmpl = template[name]
        encoding = getattr(tmpl, "encoding", None) or "utf-8"
        errors = getattr(tmpl, "errors", None) or ("backslashreplace" if name == "stderr" else "strict")
        stream = io.TextIOWrapper(buf, encoding, errors, newline="\n",
                                  line_buffering=buffered and (isatty or fd == 2),
                                  write_through=not buffered)
        stream.mode = "w" if write else "r"
        streams[name] = stream
    sys.stdin = sys.__stdin__ = streams["stdin"]
    sys.stdout = sys.__stdout__ = streams["stdout"]
    sys.stderr = sys.__stderr__ = streams["stderr"]


def _run_as_main(path, code, sigmask):
    """Run the CLI script as ``python3 <path>`` would, through the interpreter's exit sequence.

    Signals stay blocked (since the fork) until the script starts, then get the client's mask:
    one that arrived meanwhile hits the command as it would have hit a starting interpreter."""
    import builtins
    import importlib.machinery

    main = types.ModuleType("__main__")
    main.__file__ = path
    main.__cached__ = None
    main.__builtins__ = builtins
    main.__loader__ = importlib.machinery.SourceFileLoader("__main__", path)
    main.__spec__ = None
    sys.modules["__main__"] = main
    exitcode = 0
    try:
        signal.pthread_sigmask(signal.SIG_SETMASK, sigmask)
        exec(code, main.__dict__)
    except SystemExit as exc:
        exitcode = _system_exit_code(exc)
    except BaseException:
        exc_type, exc, tb = sys.exc_info()
        if isinstance(exc, KeyboardInterrupt):
            exitcode = -signal.SIGINT
        else:
            exitcode = 1
        try:
            sys.excepthook(exc_type, exc, tb)
        except BaseException:
            pass
        del exc_type, exc, tb
    return _finalize(exitcode)


def _system_exit_code(exc):
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    try:
        if sys.stderr is not None:
            sys.stderr.write(str(code) + "\n")
            sys.stderr.flush()
    except BaseException:
        pass
    return 1


def _finalize(exitcode):
    """Py_FinalizeEx's visible part: threads, atexit, flushing the standard streams."""
    import atexit
    import threading

    try:
        threading._shutdown()
    except BaseException:
        pass
    try:
        atexit._run_exitfuncs()
    except BaseException:
        pass
    status = exitcode
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is None or getattr(stream, "closed", False):
            continue
        try:
            stream.flush()
        except BaseException as exc:
            if name == "stdout":
                try:
                    sys.unraisablehook(_Unraisable(exc, stream))
                except BaseException:
                    pass
                status = 120
    if status < 0:  # an uncaught KeyboardInterrupt ends a Python process by SIGINT
        signal.signal(-status, signal.SIG_DFL)
        os.kill(os.getpid(), -status)
        status = 128 - status
    return status


class _Unraisable:
    def __init__(self, exc, obj):
        self.exc_type = type(exc)
        self.exc_value = exc
        self.exc_traceback = exc.__traceback__
        self.err_msg = "Exception ignored in"
        self.object = obj


# -- small helpers ------------------------------------------------------------------------


class _CapturedOutput:
    """Point fds 1 and 2 at a temporary file while awscli is imported."""

    def start(self):
        import tempfile

        self.file = tempfile.TemporaryFile()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError, AttributeError):
                pass
        self.saved = [os.dup(1), os.dup(2)]
        os.dup2(self.file.fileno(), 1)
        os.dup2(self.file.fileno(), 2)

    def stop(self):
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError, AttributeError):
                pass
        os.dup2(self.saved[0], 1)
        os.dup2(self.saved[1], 2)
        for fd in self.saved:
            os.close(fd)
        self.file.seek(0)
        data = self.file.read()
        self.file.close()
        return data.decode("utf-8", "replace")


def _is_startup_var(key):
    return key in STARTUP_VARS or key.startswith(STARTUP_PREFIXES)


def _same_module(name, names):
    module = sys.modules.get(name)
    return any(n == name or (module is not None and sys.modules.get(n) is module) for n in names)


def _user_site_exists(env):
    import site

    if not site.ENABLE_USER_SITE:
        return False
    base = env.get("PYTHONUSERBASE")
    if not base:
        home = env.get("HOME")
        if not home:
            import pwd

            try:
                home = pwd.getpwuid(os.getuid()).pw_dir
            except KeyError:
                return False
        base = os.path.join(home, ".local")
    version = "python{}.{}".format(*sys.version_info[:2])
    return os.path.isdir(os.path.join(base, "lib", version, "site-packages"))


def _parse_run(payload):
    fields = payload.split(b"\0")
    pos = 0

    def take(n=1):
        nonlocal pos
        if pos + n > len(fields):
            raise ValueError("truncated")
        out = fields[pos:pos + n]
        pos += n
        return out

    (cwd,) = take()
    (umask,) = take()
    (sigign,) = take()
    (sigmask,) = take()
    (rlimits,) = take()
    (nfds,) = take()
    fdnums = [int(x) for x in take(int(nfds))]
    (argc,) = take()
    argv = [os.fsdecode(a) for a in take(int(argc))]
    (nenv,) = take()
    env = {}
    for item in take(int(nenv)):
        key, sep, value = item.partition(b"=")
        if sep and key:
            env[os.fsdecode(key)] = os.fsdecode(value)
    valid = signal.valid_signals()
    return {"cwd": os.fsdecode(cwd), "umask": int(umask, 8), "fdnums": fdnums, "argv": argv,
            "env": env,
            "sigign": {int(x) for x in sigign.split(b",") if x and int(x) in valid},
            "sigmask": {int(x) for x in sigmask.split(b",") if x and int(x) in valid},
            "rlimits": {int(r): (int(soft), int(hard)) for r, soft, hard in
                        (item.split(b":") for item in rlimits.split(b",") if item)}}


def _kill(pid, sig):
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _close(fd):
    try:
        os.close(fd)
    except OSError:
        pass


def main(argv):
    import ctypes

    # Not dumpable (PR_SET_DUMPABLE 0), like the sandbox worker: the commands it runs for a
    # snippet have the same uid, and must not open its descriptors through /proc.
    ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)
    preload = ()
    if len(argv) == 4 and argv[2] == "--preload":
        preload = [x for x in argv[3].split(",") if x]
        argv = argv[:2]
    if len(argv) != 2:
        sys.stderr.write("usage: aws_zygote.py SOCKET CLI_SCRIPT [--preload svc,svc...]\n")
        return 2
    socket_path, cli_path = argv
    zygote = Zygote(socket_path, cli_path, preload)

    def stop(signum, frame):
        raise SystemExit(0)

    try:
        zygote.warm()
    except SystemExit as exc:
        _log(f"cannot serve: {exc.code}")
        return 3
    except Exception as exc:  # noqa: BLE001
        _log(f"cannot serve: {type(exc).__name__}: {exc}")
        return 3
    # Handlers installed after _INITIAL_SIGNALS was recorded: children get the fresh ones back.
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)
    zygote.listen()
    try:
        sys.stdout.write("ready\n")
        sys.stdout.flush()
    except OSError:
        pass
    os.dup2(2, 1)  # nothing else goes to the ready pipe
    template = zygote.template
    _log(f"ready in {zygote.warm_seconds:.2f} s; rewrites {len(zygote.rewriter.locations)} "
         f"import-time paths; {len(zygote.fingerprint)} variables must match; "
         f"{len(template.scans) if template else 0} loader scans and "
         f"{len(template.files) if template else 0} data files ready for children")
    try:
        zygote.serve()
    except KeyboardInterrupt:
        pass
    finally:
        zygote.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
