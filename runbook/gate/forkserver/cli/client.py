#!/usr/bin/python3 -SE
"""``aws`` for runbook snippets while the sandbox's AWS CLI fork server (server.py) is up.

Connects to the fork server's socket (``RUNBOOK_AWS_ZYGOTE``, set by the sandbox in every
snippet's environment), hands over what an ``exec`` of the real CLI would have passed on:
its arguments, its whole environment, working directory, umask, resource limits, ignored and
blocked signals, and every inheritable file descriptor (stdin/stdout/stderr, and any other, so
that ``file:///dev/fd/63`` from a process substitution still works); waits for the command's
wait status and ends the same way: same exit code, or killed by the same signal.

HUP, INT, QUIT, TERM, USR1, USR2 and ALRM received while the command runs are delivered to it
(the real CLI would have received them); its answer decides how this process ends. If this
process is killed outright, the fork server notices the closed connection and stops the
command (SIGTERM, then SIGKILL).

If the fork server cannot be reached, or declines (an environment it cannot reproduce), this
process becomes the real CLI (``RUNBOOK_AWS_REAL``) with ``execv``: a missing fork server
changes how fast a command runs, never what it does.

Standard library only, and only C modules where possible: it starts in about 10 ms. It runs
in place, as ``<python> -S -E client.py``: no site, no PYTHON* variables of the snippet, and
its own directory on sys.path for protocol.py (the wire protocol, shared with server.py).
"""

import _signal
import _socket
import os
import resource
import sys

import protocol

DEFAULT_REAL = "/usr/bin/aws"  # without RUNBOOK_AWS_REAL
FORWARDED = ("SIGHUP", "SIGINT", "SIGQUIT", "SIGTERM", "SIGUSR1", "SIGUSR2", "SIGALRM")

_state = {"phase": "start", "sock": None, "signals": []}


def _die(sig):
    """End as if killed by ``sig`` (what a shell sees from the real CLI)."""
    try:
        _signal.pthread_sigmask(_signal.SIG_UNBLOCK, [sig])
    except (AttributeError, OSError, ValueError):
        pass
    _signal.signal(sig, _signal.SIG_DFL)
    os.kill(os.getpid(), sig)
    os._exit(128 + sig)  # a signal whose default action is not to terminate


def _on_signal(sig, frame):
    phase = _state["phase"]
    if phase == "start":  # nothing started yet: the real CLI would have died right here
        _die(sig)
    _state["signals"].append(sig)
    if phase == "running":
        _forward(sig)


def _forward(sig):
    try:
        _state["sock"].send(bytes([sig]))
    except OSError:
        pass


def _exec_real(reason):
    real = os.environ.get("RUNBOOK_AWS_REAL") or DEFAULT_REAL
    if os.environ.get("RUNBOOK_AWS_CLIENT_DEBUG"):
        os.write(2, f"aws client: running {real} directly: {reason}\n".encode())
    for name in FORWARDED:
        sig = getattr(_signal, name)
        if _signal.getsignal(sig) == _on_signal:
            _signal.signal(sig, _signal.SIG_DFL)
    os.execv(real, [real, *sys.argv[1:]])


def _inheritable_fds():
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        names = ["0", "1", "2"]
    fds = []
    for name in names:
        fd = int(name)
        try:
            if os.get_inheritable(fd):
                fds.append(fd)
        except OSError:
            pass  # closed meanwhile (the listing's own descriptor)
    return sorted(fds)


def _request(fds, ignored, blocked):
    umask = os.umask(0o022)
    os.umask(umask)
    argv = [os.fsencode(a) for a in sys.argv[1:]]
    env = [k + b"=" + v for k, v in os.environb.items()]
    limits = []
    for name in dir(resource):
        if name.startswith("RLIMIT_"):
            res = getattr(resource, name)
            try:
                soft, hard = resource.getrlimit(res)
            except (OSError, ValueError):
                continue
            limits.append(b"%d:%d:%d" % (res, soft, hard))
    fields = [os.getcwdb(), b"%o" % umask, b",".join(b"%d" % s for s in sorted(ignored)),
              b",".join(b"%d" % s for s in sorted(blocked)), b",".join(limits),
              b"%d" % len(fds), *(b"%d" % fd for fd in fds),
              b"%d" % len(argv), *argv, b"%d" % len(env), *env]
    payload = b"\0".join(fields)
    return protocol.header(protocol.KIND_RUN, len(payload)) + payload


def main():
    # What an exec would pass on: ignored signals stay ignored, the blocked mask stays.
    blocked = {int(s) for s in _signal.pthread_sigmask(_signal.SIG_BLOCK, [])}
    ignored = set()
    for sig in range(1, _signal.NSIG):
        try:
            if _signal.getsignal(sig) == _signal.SIG_IGN:
                ignored.add(sig)
        except (OSError, ValueError):
            pass
    for name in FORWARDED:
        sig = getattr(_signal, name)
        if sig not in ignored:
            _signal.signal(sig, _on_signal)
    path = os.environ.get("RUNBOOK_AWS_ZYGOTE")
    if not path:
        _exec_real("no fork server configured")
    fds = _inheritable_fds()
    if len(fds) > protocol.MAX_FDS:
        _exec_real(f"{len(fds)} open file descriptors")
    try:
        message = _request(fds, ignored, blocked)
    except OSError as exc:  # no working directory any more...
        _exec_real(f"cannot describe this process: {exc}")
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as exc:
        sock.close()
        _exec_real(f"cannot connect to {path}: {exc}")
    _state["sock"] = sock
    _state["phase"] = "sending"
    try:
        ancillary = [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS,
                      b"".join(fd.to_bytes(4, sys.byteorder, signed=True) for fd in fds))]
        sent = sock.sendmsg([message], ancillary if fds else [])
        sock.sendall(message[sent:])
    except OSError as exc:
        sock.close()
        if _state["signals"]:
            _die(_state["signals"][0])
        _exec_real(f"cannot send the request: {exc}")
    mask = _signal.pthread_sigmask(_signal.SIG_BLOCK, [getattr(_signal, n) for n in FORWARDED])
    early = list(_state["signals"])  # arrived while sending
    _state["phase"] = "running"
    _signal.pthread_sigmask(_signal.SIG_SETMASK, mask)
    for sig in early:
        _forward(sig)

    buf = b""
    accepted = False
    while True:
        try:
            chunk = sock.recv(4096)
        except InterruptedError:
            continue
        except OSError:
            chunk = b""
        if not chunk:
            break
        buf += chunk
        if not accepted and buf[:1] == protocol.ACCEPTED:
            accepted = True
            buf = buf[1:]
        if not accepted and buf[:1] == protocol.DECLINED:
            continue  # the reason follows until EOF
        if accepted and len(buf) >= protocol.RESULT_SIZE and buf[:1] == protocol.RESULT:
            status = protocol.parse_result(buf)
            sock.close()
            if os.WIFSIGNALED(status):
                _die(os.WTERMSIG(status))
            os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 255)
    sock.close()
    _state["phase"] = "done"
    if not accepted:
        if _state["signals"]:
            _die(_state["signals"][0])
        reason = buf[1:].decode("utf-8", "replace") if buf[:1] == protocol.DECLINED else "connection closed"
        _exec_real(f"the fork server declined: {reason}")
    os.write(2, b"aws (runbook fork server): the fork server went away while the command ran\n")
    os._exit(255)


if __name__ == "__main__":
    main()
