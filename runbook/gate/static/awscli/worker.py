"""Persistent AWS CLI v2 validator: the static gate's worker process.

Runs under the interpreter of the AWS CLI v2 script (Debian: ``/usr/bin/python3``) and
imports nothing but the standard library and ``awscli`` (v2, with its vendored botocore).
It must not be imported by the project: ``runbook.gate.static.checker`` starts it as a script.

Protocol: one JSON object per line on stdin, one JSON answer per line on stdout.

    -> {"argv": ["dynamodb", "get-item", "--table-name", "t", ...], "cwd": "/tmp/x"}
    <- {"ok": true, "error": "", "service": "dynamodb", "operation": "GetItem",
        "command": "dynamodb get-item", "custom": false, "calls": [...], "notes": [...]}

The real v2 ``CLIDriver`` parses the command in-process: options, shorthand, JSON,
``file://`` parameters and customisations. botocore then validates and serialises the
request, and a ``before-call`` handler answers with a stub response built from the output
shape, so nothing is ever sent. ``calls`` lists every stubbed API call with the API
parameters botocore validated (bytes and timestamps encoded), for the caller's own
constraint checks. Defence in depth: sockets, subprocesses and browsers are disabled in
this process, the environment is a scratch one, and ``time.sleep`` is a no-op (waiters,
``logs tail --follow``).

A fresh ``CLIDriver`` (fresh botocore session) is built for every command, sharing only
the data loader (parsed service models): reusing one driver leaks ``--region``,
``--profile``, credentials and event handlers between commands, and a fully fresh
driver costs ~50 ms, this ~8 ms.
"""

import argparse
import datetime
import gc
import io
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

MARKER_RE = re.compile(r"gatestub", re.IGNORECASE)
MAX_CALLS = 20  # stubbed API calls per command before it is stopped (polling loops)

# Customisations that only read, and so may be labelled with the API operation they call.
READ_ONLY_CUSTOM = {
    ("logs", "tail"), ("s3", "ls"), ("s3", "presign"), ("ecr", "get-login-password"),
    ("ecr-public", "get-login-password"), ("configure", "get"), ("configure", "list"),
    ("configure", "list-profiles"), ("ddb", "select"), ("cloudtrail", "validate-logs"),
}
# Failures that depend on the operator's machine, not on the command text.
ENVIRONMENT_ERRORS = (
    re.compile(r"Unable to load paramfile .*(No such file or directory|Is a directory)"),
    re.compile(r"The user-provided path .* does not exist"),
    re.compile(r"SessionManagerPlugin is not found"),
    re.compile(r"subprocesses are disabled in the static gate"),
    re.compile(r"Invalid template path "),
    re.compile(r"Missing the following required SSO configuration values"),
    re.compile(r"The config profile \(.*\) could not be found"),
)
# Errors about the command text itself: never blamed on the stub answers.
TEXT_ERRORS = ("ParamValidationError", "ParamError", "ParamSyntaxError", "ParamUnknownKeyError",
               "UnknownArgumentError", "ArgumentError", "ValidationError", "UnknownKeyError")


class _Enough(Exception):
    """Raised from the stub handler to stop a command that keeps calling (waiters, polls)."""


class _Blocked(OSError):
    pass


def _harden():
    def no_network(*args, **kwargs):
        raise _Blocked("network access is disabled in the static gate worker")

    socket.socket.connect = no_network
    socket.socket.connect_ex = no_network
    socket.create_connection = no_network
    socket.getaddrinfo = no_network

    class NoPopen:
        def __init__(self, *args, **kwargs):
            raise _Blocked("subprocesses are disabled in the static gate worker")

    subprocess.Popen = NoPopen
    os.system = lambda *a, **k: 1
    try:
        import webbrowser
        webbrowser.open = lambda *a, **k: True
        webbrowser.open_new = webbrowser.open_new_tab = webbrowser.open
    except Exception:  # pragma: no cover - webbrowser is stdlib
        pass
    time.sleep = lambda seconds=0: None


def _encode(value, depth=0):
    if depth > 40:
        return {"$repr": "..."}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        return {str(k): _encode(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v, depth + 1) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return {"$bytes": len(value)}
    if isinstance(value, (datetime.datetime, datetime.date)):
        return {"$timestamp": value.isoformat()}
    if hasattr(value, "read"):
        return {"$stream": True}
    return {"$repr": repr(value)[:200]}


def _load_handler_memo(path):
    """The fork server's ``handler_memo`` module, from the path the checker gives (this script
    imports nothing from beside itself or the project)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("runbook_handler_memo", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Worker:
    def __init__(self, handler_memo):
        import awscli
        import awscli.clidriver as clidriver
        from awscli.argparser import CLIArgParser
        from awscli.clidriver import ServiceOperation
        from awscli.customizations.waiters import WaiterStateCommand
        from botocore import hooks as bc_hooks
        from botocore.awsrequest import AWSResponse

        self.version = awscli.__version__
        self._clidriver = clidriver
        self._ServiceOperation = ServiceOperation
        self._WaiterStateCommand = WaiterStateCommand
        self._AWSResponse = AWSResponse
        self._skeletons = {}

        # Handler registration checks each handler's signature with inspect; thousands of
        # registrations per driver make that the main cost: memoised by the handler's code.
        _load_handler_memo(handler_memo).install(bc_hooks)

        # Short "Invalid choice" message instead of the full table of choices.
        original_check = CLIArgParser._check_value

        def check_value(parser, action, value):
            try:
                return original_check(parser, action, value)
            except argparse.ArgumentError as exc:
                if action.choices is None or value in action.choices:
                    raise
                from difflib import get_close_matches
                msg = f"Invalid choice: {value!r}"
                close = get_close_matches(value, list(action.choices), cutoff=0.8)
                if close:
                    msg += ", maybe you meant: {}".format(", ".join(close))
                raise argparse.ArgumentError(action, msg) from exc

        CLIArgParser._check_value = check_value

        self._loader = None
        first = self._new_driver()  # loads the shared data loader
        self._loader = first.session.get_component("data_loader")

    # -- driver -----------------------------------------------------------------------
    def _new_driver(self):
        driver = self._clidriver.create_clidriver()
        if self._loader is not None:
            driver.session.register_component("data_loader", self._loader)
        return driver

    def _skeleton(self, shape, depth=0):
        if shape is None or depth > 3:
            return {}
        out = {}
        required = set(getattr(shape, "required_members", ()) or ())
        for name, member in shape.members.items():
            if member.serialization.get("eventstream") or member.type_name == "blob":
                continue
            if member.type_name == "list":
                out[name] = []
            elif member.type_name == "map":
                out[name] = {}
            elif member.type_name == "structure":
                if name in required or depth < 1:
                    out[name] = self._skeleton(member, depth + 1)
            elif name in required:
                out[name] = {
                    "string": "gatestub", "integer": 0, "long": 0, "boolean": False,
                    "double": 0.0, "float": 0.0,
                    "timestamp": datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc),  # noqa: UP017 (any CLI Python)
                }.get(member.type_name)
        return out

    def _stub_for(self, model):
        key = (model.service_model.service_name, model.name)
        if key not in self._skeletons:
            try:
                self._skeletons[key] = self._skeleton(model.output_shape)
            except Exception:
                self._skeletons[key] = {}
        return _deepcopy(self._skeletons[key])

    # -- one command ------------------------------------------------------------------
    def _resolve(self, driver, argv):
        """Find the command object argv names: (service, op_cli_name, command object)."""
        table = driver._get_command_table()
        parser = driver.create_parser(table)
        try:
            parsed, remaining = parser.parse_known_args(list(argv))
        except BaseException:
            return None, None, None
        svc_cli = getattr(parsed, "command", None)
        svc_cmd = table.get(svc_cli)
        op_cli = next((a for a in remaining if not a.startswith("-")), None)
        sub = None
        if svc_cmd is not None and op_cli is not None:
            try:
                sub = svc_cmd.subcommand_table.get(op_cli)
            except Exception:
                sub = None
            if sub is not None and op_cli == "wait":
                rest = remaining[remaining.index(op_cli) + 1:]
                waiter = next((a for a in rest if not a.startswith("-")), None)
                try:
                    sub = sub.subcommand_table.get(waiter) or sub
                except Exception:
                    pass
        return svc_cli, op_cli, (svc_cmd, sub)

    def run(self, argv, cwd=None):
        argv = [str(a) for a in argv]
        notes = []
        # --profile names a profile on the operator's machine: not checkable here.
        cleaned, i = [], 0
        while i < len(argv):
            a = argv[i]
            if a == "--profile" and i + 1 < len(argv):
                notes.append(f"--profile {argv[i + 1]} ignored")
                i += 2
                continue
            if a.startswith("--profile="):
                i += 1
                continue
            if a == "--debug":
                i += 1
                continue
            cleaned.append(a)
            i += 1
        argv = cleaned
        result = {"ok": True, "error": "", "service": None, "operation": None,
                  "command": None, "custom": False, "calls": [], "notes": notes}
        positional = [a for a in argv if not a.startswith("-")]
        if not positional or (argv[-1] == "help" and (len(argv) < 2 or not argv[-2].startswith("--"))):
            result["notes"].append("help/empty command not validated")
            return result

        driver = self._new_driver()
        calls = []
        state = {"exc": None, "waiter": False}
        saved_err = sys.stderr
        sys.stderr = io.StringIO()  # argparse complaints: the real run reports them
        try:
            svc_cli, op_cli, objs = self._resolve(driver, argv)
        finally:
            sys.stderr = saved_err
        svc_cmd, sub = objs if objs else (None, None)
        result["command"] = " ".join(x for x in (svc_cli, op_cli) if x)
        if svc_cmd is not None:
            try:
                result["service"] = svc_cmd.service_model.service_name
            except Exception:
                result["service"] = None
        if isinstance(sub, self._ServiceOperation):
            model = sub._operation_model
            result["service"] = model.service_model.service_name
            result["operation"] = model.name
            state["waiter"] = isinstance(sub, self._WaiterStateCommand)
        elif sub is not None:
            result["custom"] = True

        def capture_params(params, model, **kwargs):
            calls.append({"service": model.service_model.service_name,
                          "operation": model.name, "params": _encode(params),
                          "validated": False})

        def stub(model, params, **kwargs):
            if calls:
                calls[-1]["validated"] = True
            if len(calls) > MAX_CALLS or (state["waiter"] and len(calls) > 1):
                raise _Enough()
            return self._AWSResponse("https://stub.invalid", 200, {}, None), \
                self._stub_for(model)

        def refuse_send(request, **kwargs):
            raise _Blocked("the static gate never sends requests")

        events = driver.session.get_component("event_emitter")
        events.register_last("before-parameter-build", capture_params)
        events.register_first("before-call", stub)
        events.register_first("before-send", refuse_send)

        handler = driver._error_handler

        class Recorder:
            def handle_exception(self, exception, stdout, stderr):
                state["exc"] = exception
                if isinstance(exception, _Enough):
                    return 0
                return handler.handle_exception(exception, stdout, stderr)

            def __getattr__(self, name):
                return getattr(handler, name)

        driver._error_handler = Recorder()

        out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="replace")
        err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="replace")
        saved = sys.stdout, sys.stderr, os.getcwd()
        sys.stdout, sys.stderr = out, err
        try:
            if cwd and os.path.isdir(cwd):
                os.chdir(cwd)
            rc = driver.main(argv)
        except SystemExit as exc:  # pragma: no cover - the driver catches these
            rc = exc.code if isinstance(exc.code, int) else 255
        except BaseException as exc:  # pragma: no cover
            state["exc"] = exc
            rc = 255
            err.write(f"{type(exc).__name__}: {exc}\n")
        finally:
            sys.stdout, sys.stderr = saved[0], saved[1]
            try:
                os.chdir(saved[2])
            except OSError:
                pass
        err.flush()
        text = err.buffer.getvalue().decode("utf-8", "replace")
        exc = state["exc"]
        result["calls"] = calls
        if not result["operation"] and result["custom"] and calls and \
                tuple(result["command"].split(" ")[:2]) in READ_ONLY_CUSTOM:
            result["operation"] = calls[0]["operation"]
            result["service"] = calls[0]["service"]
        if not result["service"] and calls:
            result["service"] = calls[0]["service"]
        if rc == 0 or isinstance(exc, _Enough):
            return result
        message = _clean_error(text)
        if not message and exc is None:
            # e.g. "s3 ls" finding nothing, "configure get" of an unset value
            result["notes"].append(f"exit status {rc} without an error message")
            return result
        message = message or str(exc)
        if any(p.search(message) for p in ENVIRONMENT_ERRORS):
            result["notes"].append("not fully validated (depends on the machine): " + message)
            return result
        if exc is not None and calls and calls[-1]["validated"] and _is_stub_artefact(exc):
            # The command text was accepted and a request validated; the failure comes
            # from the stub answer (a customisation reading a field the stub lacks).
            result["notes"].append(f"after a stubbed call: {type(exc).__name__}: {message}")
            return result
        if exc is not None and MARKER_RE.search(message):
            result["notes"].append("value from a stubbed command not validated: " + message)
            return result
        result["ok"] = False
        result["error"] = message
        return result


def _is_stub_artefact(exc):
    """After a request was validated, a failure that is not about the command text comes
    from the stub answer (a customisation reading fields the stub lacks, a waiter...)."""
    return not any(cls.__name__ in TEXT_ERRORS for cls in type(exc).__mro__)


def _deepcopy(value):
    if isinstance(value, dict):
        return {k: _deepcopy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deepcopy(v) for v in value]
    return value


_USAGE_HEAD = re.compile(r"^\s*usage: aws .*?\n\s*aws <command> <subcommand> help\s*\n", re.S)


def _clean_error(text):
    text = _USAGE_HEAD.sub("", text.replace("\r", ""))
    text = text.strip()
    m = re.search(r"^aws: error: .*", text, re.M | re.S)
    if m:
        text = m.group(0)
    lines = [ln.rstrip() for ln in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    text = "\n".join(lines).strip()
    if text.startswith("Parameter validation failed:\n"):  # one line per problem
        head, _, rest = text.partition("\n")
        text = head + " " + "; ".join(ln.strip() for ln in rest.splitlines() if ln.strip())
    return text


def main():
    # The protocol owns the original stdin/stdout; the CLI gets /dev/null and buffers.
    proto_in = os.fdopen(os.dup(0), "r", encoding="utf-8")
    proto_out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    sys.stdin = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    handler_memo = sys.argv[1]  # the path of handler_memo.py
    sys.argv = ["aws"]

    home = tempfile.mkdtemp(prefix="gate-aws-home-")
    os.environ.update({
        "HOME": home, "AWS_ACCESS_KEY_ID": "AKIAGATESTUB00000000",
        "AWS_SECRET_ACCESS_KEY": "gatestub/secret/key/not/real/0000000000",
        "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true", "AWS_PAGER": "", "AWS_CLI_AUTO_PROMPT": "off",
        "AWS_MAX_ATTEMPTS": "1", "BROWSER": "true",
    })
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ROLE_ARN",
                "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CA_BUNDLE"):
        os.environ.pop(var, None)
    scratch = tempfile.mkdtemp(prefix="gate-aws-cwd-")
    os.chdir(scratch)
    _harden()

    try:
        worker = Worker(handler_memo)
    except Exception as exc:
        proto_out.write(json.dumps({"ready": False, "error": f"{type(exc).__name__}: {exc}"}) + "\n")
        proto_out.flush()
        return 2
    proto_out.write(json.dumps({"ready": True, "version": worker.version,
                                "python": sys.version.split()[0]}) + "\n")
    proto_out.flush()
    # The loaded service models are large and long-lived: a full collection scanning
    # them costs ~0.5 s. Freeze what exists, and every few commands collect the
    # commands' garbage and freeze the survivors (newly loaded models).
    gc.collect()
    gc.freeze()
    served = 0

    for line in proto_in:
        line = line.strip()
        if not line:
            continue
        started = time.perf_counter()
        try:
            request = json.loads(line)
            if request.get("ping"):
                answer = {"ok": True, "pong": True}
            else:
                answer = worker.run(request["argv"], request.get("cwd"))
        except Exception as exc:  # a bug here must not kill the worker
            answer = {"ok": False, "error": f"worker failure: {type(exc).__name__}: {exc}",
                      "service": None, "operation": None, "internal": True}
        answer["ms"] = round((time.perf_counter() - started) * 1000, 2)
        proto_out.write(json.dumps(answer, default=str) + "\n")
        proto_out.flush()
        served += 1
        if served % 20 == 0:
            gc.collect()
            gc.freeze()
    return 0


if __name__ == "__main__":
    if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
        sys.path.pop(0)  # never import project modules from beside this script
    sys.exit(main())

