"""What the platform's functions do when invoked in the world.

moto's Docker-less Lambda answers every invocation with its payload and runs nothing. The
runbook's resolutions invoke real work, though: the DLQ replay function moves messages from
the dead-letter queue back to the lead queue. The world gives such a function its behaviour by
answering its invocations itself (moto runs in the worker's process, so its Lambda backend can
be asked first), acting on moto's SQS backend directly: the call comes in the middle of a
request that moto already authorised, as AWS runs a function under its own role.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from .context import World

Handler = Callable[[Any], bytes]
# (account, region, function name) → what invoking it does
_HANDLERS: dict[tuple[str, str, str], Handler] = {}
_LOCK = threading.Lock()


def _function_name(name_or_arn: str) -> str:
    """`name`, `name:qualifier` or an ARN: the function's name."""
    return name_or_arn.split(":")[6] if name_or_arn.startswith("arn:") else name_or_arn.split(":")[0]


def _install() -> None:
    from moto.awslambda_simple.models import LambdaSimpleBackend

    with _LOCK:
        if getattr(LambdaSimpleBackend, "_runbook_functions", False):
            return
        original = LambdaSimpleBackend.invoke

        def invoke(self: Any, function_name: str, qualifier: str | None, body: Any, headers: Any,
                   response_headers: Any) -> str | bytes | None:
            handler = _HANDLERS.get((self.account_id, self.region_name, _function_name(function_name)))
            if handler is not None:
                return handler(body)
            return original(self, function_name, qualifier, body, headers, response_headers)

        LambdaSimpleBackend.invoke = invoke  # type: ignore[method-assign]
        LambdaSimpleBackend._runbook_functions = True  # type: ignore[attr-defined]


def _replay(account: str, region: str, dlq: str, target: str) -> Handler:
    def handler(body: Any) -> bytes:
        from moto.sqs.models import sqs_backends

        try:
            limit = int(json.loads(body or "{}").get("count", 10))
        except (ValueError, AttributeError, TypeError):
            limit = 10
        sqs = sqs_backends[account][region]
        moved = 0
        while moved < limit:
            batch = sqs.receive_message(dlq, min(10, limit - moved), 0, 30)
            if not batch:
                break
            for message in batch:
                sqs.send_message(target, message.body)
                sqs.delete_message(dlq, message.receipt_handle or "")
                moved += 1
        return json.dumps({"replayed": moved, "from": dlq, "to": target}).encode()

    return handler


def install(world: World) -> None:
    """Give env's functions their behaviour: the replay function (an inventory function whose
    key says replay) moves up to `count` messages from the dead-letter queue to the lead queue."""
    _install()
    dlq = world.dlq_key()
    targets = [name for key, name in world.names("sqs_queue") if key != dlq]
    for key, function in world.names("lambda_function"):
        if "replay" in key and dlq is not None and targets:
            _HANDLERS[(world.env.account, world.env.region, function)] = _replay(
                world.env.account, world.env.region, world.scope[dlq], targets[0])
