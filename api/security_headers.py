"""Response headers every answer gets, whoever produced it (a route, the auth middleware's 401,
the rate limiter's 429): pure ASGI, outermost.

- `X-Content-Type-Options: nosniff` on every response: a browser must not guess that a JSON
  answer (which may echo client input) is HTML or script.
- `Cache-Control: no-store` on every response to a request that carries a credential
  (`Authorization`): a tenant's data must not stay in a browser's or a proxy's cache. A
  `Cache-Control` the route set already (a persisted-query miss's `no-cache`) is kept after it.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def carries_credential(scope: Scope) -> bool:
    return any(key.lower() == b"authorization" for key, _ in scope.get("headers", ()))


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        credentialed = carries_credential(scope)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(raw=list(message.get("headers", ())))
                headers["x-content-type-options"] = "nosniff"
                if credentialed:
                    cache = headers.get("cache-control")
                    if cache is None:
                        headers["cache-control"] = "no-store"
                    elif "no-store" not in cache.lower():
                        headers["cache-control"] = f"no-store, {cache}"
                message = {**message, "headers": headers.raw}
            await send(message)

        await self.app(scope, receive, send_with_headers)
