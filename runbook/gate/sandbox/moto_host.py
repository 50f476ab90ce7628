"""moto in a process of its own, whose seeded world is kept and brought back by fork.

Started by the sandbox worker (``python -m runbook.gate.sandbox.moto_host``) inside the
sandbox; it talks to the worker over stdin/stdout, one JSON object per line (as the worker
talks to its parent). The first line it writes is ``{"port": N}``.

Two states:

* **serving**: the host serves moto's HTTP endpoint itself and runs ``call`` ops (seeding).
* **frozen** (``freeze``): the host stops serving and keeps its world untouched, as a
  template. A fork of it, *the copy*, serves the same listening socket and runs the calls.
  ``restore`` kills the copy and forks a fresh one: copy-on-write, so bringing a seeded world
  back costs the same whatever its size (a reseed grows with the alarms). ``thaw`` kills the
  copy and lets the template serve again, to seed more into it.

Forking a threaded process is safe here because the host forks only when quiet: the accept
loop stopped and every request thread joined. The server speaks HTTP/1.0, so that no
keep-alive connection outlives its request and no request can reach the template once it is
frozen.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import signal
import socketserver
import sys
import threading
import traceback
import urllib.request
from functools import partial
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

#: How often a stopped accept loop notices (the cost of every freeze and thaw).
POLL_SECONDS = 0.01


class _Lines:
    """One JSON object per line over a pair of file descriptors (unbuffered reads: a fork
    inherits no half-read request)."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self.read_fd, self.write_fd = read_fd, write_fd
        self._buffer = b""

    def read(self) -> str | None:
        while b"\n" not in self._buffer:
            chunk = os.read(self.read_fd, 65536)
            if not chunk:
                return None
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode()

    def write(self, message: Any) -> None:
        data = (json.dumps(message) + "\n").encode()
        while data:
            data = data[os.write(self.write_fd, data):]

    def close(self) -> None:
        for fd in {self.read_fd, self.write_fd}:
            try:
                os.close(fd)
            except OSError:
                pass


def _server() -> BaseWSGIServer:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app

    class OneRequestPerConnection(MotoRequestHandler):
        # In its own vars, so werkzeug does not turn keep-alive on for a threaded server.
        protocol_version = "HTTP/1.0"

    app = DomainDispatcherApplication(create_backend_app)
    return make_server("127.0.0.1", 0, app, threaded=True, request_handler=OneRequestPerConnection)


class Host:
    def __init__(self) -> None:
        self.server = _server()
        self.endpoint_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread: threading.Thread | None = None
        self.copy: tuple[int, _Lines] | None = None  # (pid, channel) while frozen
        self.asker: _Lines | None = None  # the worker's channel: the template's alone

    # -- serving -------------------------------------------------------------------------

    def serve(self) -> None:
        # socketserver's loop, not werkzeug's: that one closes the listening socket when it
        # stops, and the socket must outlive every stop (the template's and each copy's).
        self._thread = threading.Thread(target=socketserver.BaseServer.serve_forever, args=(self.server,),
                                        kwargs={"poll_interval": POLL_SECONDS}, daemon=True)
        self._thread.start()

    def quiesce(self) -> None:
        """Stop accepting and wait for every request thread: nothing runs but this thread."""
        self.server.shutdown()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        threads = getattr(self.server, "_threads", None)  # socketserver's, with block_on_close
        if threads is not None:
            threads.join()

    def configure(self) -> None:
        # Before any function exists: moto switches the Lambda backend on this flag and
        # functions created under the other backend vanish.
        self.moto_api("/moto-api/config", {"lambda": {"use_docker": False}})

    def moto_api(self, path: str, body: dict[str, Any]) -> None:
        request = urllib.request.Request(self.endpoint_url + path, data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=30) as response:
            response.read()

    def call(self, req: dict[str, Any]) -> Any:
        module_name, _, func_name = req["target"].partition(":")
        if not module_name or not func_name:
            raise ValueError(f"call target must be 'module:function', got {req['target']!r}")
        func: Any = importlib.import_module(module_name)
        for part in func_name.split("."):
            func = getattr(func, part)
        result = func(endpoint_url=self.endpoint_url, **req.get("kwargs", {}))
        json.dumps(result)  # fail here, with a clear traceback, if it is not JSON-able
        return result

    # -- the template and its copy -------------------------------------------------------

    def freeze(self) -> None:
        if self.copy is not None:
            raise RuntimeError("the world is frozen already (thaw it first)")
        self.quiesce()
        self._fork()

    def restore(self) -> None:
        if self.copy is None:
            raise RuntimeError("no frozen world to restore (freeze one first)")
        self._end_copy()
        self._fork()

    def thaw(self) -> None:
        if self.copy is not None:
            self._end_copy()
            self.serve()

    def reset(self) -> None:
        self.thaw()
        self.moto_api("/moto-api/reset", {})
        self.configure()

    def _fork(self) -> None:
        down_r, down_w = os.pipe()
        up_r, up_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the copy: serves and runs calls until it is killed
            try:
                os.close(down_w)
                os.close(up_r)
                if self.asker is not None:  # the worker's pipes are the template's
                    self.asker.close()
                self.serve()
                _loop(self, _Lines(down_r, up_w))
            finally:
                os._exit(0)
        os.close(down_r)
        os.close(up_w)
        self.copy = (pid, _Lines(up_r, down_w))

    def _end_copy(self) -> None:
        assert self.copy is not None
        pid, channel = self.copy
        self.copy = None
        channel.close()
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)

    def forward(self, line: str) -> str:
        """A request for the world as it is now: the copy's, while frozen."""
        assert self.copy is not None
        pid, channel = self.copy
        channel.write(json.loads(line))
        answer = channel.read()
        if answer is None:
            self.copy = None
            os.waitpid(pid, 0)
            raise RuntimeError("the world's copy ended during the request (restore or thaw it)")
        return answer


def _reply(req: dict[str, Any], handler: Any) -> dict[str, Any]:
    try:
        return {"id": req.get("id"), "ok": True, "result": handler()}
    except Exception as exc:  # noqa: BLE001 - everything goes back to the asker
        return {"id": req.get("id"), "ok": False, "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc()}


def _loop(host: Host, channel: _Lines) -> None:
    """The copy's loop: calls on the world it serves."""
    while (line := channel.read()) is not None:
        req = json.loads(line)
        channel.write(_reply(req, partial(host.call, req)))


def main() -> int:
    from runbook.gate.sandbox import moto_tuning
    from runbook.gate.sandbox.moto_auth import sign_the_body_as_sent
    from runbook.gate.sandbox.processes import not_dumpable

    not_dumpable()  # as the worker: no command run for a snippet may reach into moto's state
    sign_the_body_as_sent()  # before access control is ever on (the gate's on-call users)
    moto_tuning.apply()
    channel = _Lines(os.dup(0), os.dup(1))
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(2, 1)  # stdout belongs to the protocol: moto's and seeding's prints go to the log
    sys.stdout = sys.stderr
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request in the log
    host = Host()
    host.asker = channel
    host.serve()
    host.configure()
    channel.write({"port": host.server.server_address[1]})
    ops = {"freeze": host.freeze, "restore": host.restore, "thaw": host.thaw, "reset": host.reset}
    while (line := channel.read()) is not None:
        req = json.loads(line)
        op = req.get("op")
        if op == "shutdown":
            break
        if op == "call" and host.copy is not None:
            try:
                channel.write(json.loads(host.forward(line)))
            except RuntimeError as exc:
                channel.write({"id": req.get("id"), "ok": False, "error": str(exc), "traceback": ""})
            continue
        handler = ops.get(op) if op != "call" else partial(host.call, req)
        if handler is None:
            channel.write({"id": req.get("id"), "ok": False, "error": f"unknown op {op!r}", "traceback": ""})
            continue
        channel.write(_reply(req, handler))
    if host.copy is not None:
        host._end_copy()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
