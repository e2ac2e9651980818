"""What observability costs per request: the request middleware (request id, structlog
context, one JSON access line, Prometheus observations) and the `OperationMetrics` schema
extension, each measured in-process against the same work without it, in the same run.

    python -m bench.ops_overhead [--requests 20000]

No database or server needed: the middleware wraps a trivial ASGI app (so the figure is the
middleware alone), and the extension is measured with `schema.execute` of an introspection-free
query (`{ __typename }`) on two schemas that differ only by the extension. Log lines go to
/dev/null (JSON rendering included). Prints one `RESULT` line; `middleware_us` and
`extension_us` are CPU microseconds per request added.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from types import SimpleNamespace
from typing import Any

from bench._util import run_async


async def _asgi_calls(app: Any, n: int) -> float:
    scope: dict[str, Any] = {
        "type": "http",
        "method": "POST",
        "path": "/graphql",
        "headers": [(b"x-request-id", b"bench-request-id")],
        "state": {},
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        return None

    start = time.process_time()
    for _ in range(n):
        await app(dict(scope, state={}), receive, send)
    return time.process_time() - start


async def _inner(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


# What the extensions read from the context: an anonymous caller (no tenant transaction).
_CONTEXT = SimpleNamespace(tenant_schema=None, principal=None, request_id="bench")


async def _execute(schema: Any, n: int) -> float:
    start = time.process_time()
    for _ in range(n):
        result = await schema.execute("query Bench { __typename }", context_value=_CONTEXT)
        assert not result.errors, result.errors
    return time.process_time() - start


def _schemas() -> tuple[Any, Any]:
    """The app's schema without and with `OperationMetrics` (a shallow copy: Strawberry reads
    `schema.extensions` at every execution; building a second schema from the same types is
    not possible with Relay fields)."""
    from api.graphql.executable import schema
    from api.graphql.metrics import OperationMetrics

    assert OperationMetrics in schema.extensions
    plain = copy.copy(schema)
    plain.extensions = tuple(e for e in schema.extensions if e is not OperationMetrics)
    return plain, schema


async def measure(n: int) -> dict[str, float]:
    from core.logging import RequestContextMiddleware
    from core.request_info import RequestInfo, current_request

    wrapped = RequestContextMiddleware(_inner)
    plain_schema, metrics_schema = _schemas()
    for app in (_inner, wrapped):  # warm-up
        await _asgi_calls(app, 200)
    current_request.set(RequestInfo(request_id="bench"))  # what the middleware would set
    for schema in (plain_schema, metrics_schema):
        await _execute(schema, 200)
    # interleave the pairs so that machine noise hits both alike
    base_asgi = with_mw = base_exec = with_ext = 0.0
    rounds = 5
    for _ in range(rounds):
        base_asgi += await _asgi_calls(_inner, n // rounds)
        with_mw += await _asgi_calls(wrapped, n // rounds)
        base_exec += await _execute(plain_schema, n // (rounds * 4))
        with_ext += await _execute(metrics_schema, n // (rounds * 4))
    n_exec = (n // (rounds * 4)) * rounds
    n_asgi = (n // rounds) * rounds
    return {
        "middleware_us": (with_mw - base_asgi) / n_asgi * 1e6,
        "extension_us": (with_ext - base_exec) / n_exec * 1e6,
        "execute_base_us": base_exec / n_exec * 1e6,
        "execute_ratio": with_ext / base_exec,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=20_000)
    args = parser.parse_args(argv)
    from core.logging import configure_logging
    from core.settings import Settings

    # JSON lines rendered as in production, written to /dev/null (the logger factory takes
    # sys.stderr as it is when logging is configured).
    stderr, sys.stderr = sys.stderr, open(os.devnull, "w")
    try:
        configure_logging(Settings(log_level="INFO"))
    finally:
        sys.stderr = stderr
    figures = run_async(measure(args.requests))
    total = figures["middleware_us"] + figures["extension_us"]
    print(
        f"middleware {figures['middleware_us']:.1f} us/request, "
        f"OperationMetrics extension {figures['extension_us']:.1f} us/request "
        f"(schema.execute of '{{ __typename }}' {figures['execute_base_us']:.1f} us without it)",
    )
    print(
        f"RESULT middleware_us={figures['middleware_us']:.1f} "
        f"extension_us={figures['extension_us']:.1f} total_us={total:.1f} "
        f"execute_base_us={figures['execute_base_us']:.1f} "
        f"execute_ratio={figures['execute_ratio']:.3f} requests={args.requests}",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
