"""The AWS CLI fork server's wire protocol: one definition for server.py, client.py and the
sandbox worker (which asks for the server's status).

Standard library free (the client starts in about 10 ms), and run by the CLI's interpreter:
server.py and client.py import it from their own directory; the worker imports it as
``runbook.gate.forkserver.cli.protocol``.

Over a unix stream socket, the client sends :func:`header` (``MAGIC``, a kind byte, the
payload's length in 4 bytes, network order) and the payload, with its inheritable file
descriptors (at most ``MAX_FDS``) attached (SCM_RIGHTS) to the first bytes.

* ``KIND_RUN``: the payload is NUL-separated: ``cwd, umask (octal), ignored signals, blocked
  signals (comma-separated numbers), resource limits ("resource:soft:hard" comma-separated),
  n_fds, fd numbers..., argc, argv..., n_env, "KEY=value"...``. The server answers
  ``ACCEPTED`` once the child is forked, then :func:`result` (``RESULT`` + wait status, 4 bytes
  signed); or ``DECLINED`` + a reason until EOF (not forked: run the real CLI). After
  ``ACCEPTED`` each byte the client sends is a signal number to deliver to the child; if the
  client goes away the child gets SIGTERM, then SIGKILL.
* ``KIND_STATUS`` (empty payload): the answer is ``STATUS`` + JSON, then EOF.
"""

MAGIC = b"AWSZ"
KIND_RUN = 1
KIND_STATUS = 2
HEADER_SIZE = len(MAGIC) + 1 + 4
MAX_REQUEST = 64 * 1024 * 1024  # bytes of payload
MAX_FDS = 250  # descriptors a request may carry

ACCEPTED = b"A"
RESULT = b"R"
RESULT_SIZE = 5
DECLINED = b"F"
STATUS = b"S"


def header(kind: int, length: int) -> bytes:
    """The bytes a request of ``kind`` with a payload of ``length`` bytes starts with."""
    return MAGIC + bytes([kind]) + length.to_bytes(4, "big")


def parse_header(data: bytes) -> tuple[bytes, int, int]:
    """``(magic, kind, length)`` of a request's first ``HEADER_SIZE`` bytes."""
    return bytes(data[:4]), data[4], int.from_bytes(data[5:HEADER_SIZE], "big")


def result(status: int) -> bytes:
    """The server's last answer to a run: the child's wait status."""
    return RESULT + status.to_bytes(4, "big", signed=True)


def parse_result(data: bytes) -> int:
    """The wait status in a ``result()`` answer."""
    return int.from_bytes(data[1:RESULT_SIZE], "big", signed=True)
