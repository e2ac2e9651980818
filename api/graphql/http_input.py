"""What the GraphQL endpoint accepts before GraphQL runs: the response media type, the body's
size, the CSRF header of multipart requests, and the typed refusal of everything else."""

from __future__ import annotations

from typing import Any

import orjson
from cross_web import HTTPException
from starlette.types import Message, Receive, Send
from strawberry.http.parse_content_type import parse_content_type

# GraphQL-over-HTTP (https://graphql.github.io/graphql-over-http/draft/) response media types
GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON = "application/json"

HTTP_CODES = {
    400: "BAD_REQUEST",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    413: "REQUEST_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
}

# A browser's cross-site form post can send multipart/form-data but no custom header: requiring
# one of these on multipart requests (the GraphQL multipart request spec's CSRF advice, the
# headers Apollo and GraphQL Yoga clients send) stops a form on another site from running a
# mutation with the visitor's credentials. JSON requests are safe already: their Content-Type
# needs a CORS preflight, and every other POST type is refused with 415.
PREFLIGHT_HEADERS = (
    "graphql-require-preflight",
    "apollo-require-preflight",
    "x-apollo-operation-name",
)


class RequestRefused(HTTPException):
    """A request refused before any GraphQL runs, with a typed code and extra headers."""

    def __init__(
        self,
        status_code: int,
        reason: str,
        code: str,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(status_code, reason)
        self.code = code
        self.headers = headers or {}
        self.extensions = extensions


def too_large(limit: int) -> RequestRefused:
    return RequestRefused(
        413, f"The request body is larger than {limit} bytes.", "REQUEST_TOO_LARGE", limit=limit
    )


def limited_receive(receive: Receive, limit: int) -> Receive:
    """`receive` that refuses the request (413) as soon as its body passes `limit` bytes: a
    body without Content-Length (chunked) is counted as it arrives, never buffered whole."""
    received = 0

    async def wrapped() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise too_large(limit)
        return message

    return wrapped


def negotiate(accept: str | None) -> str | None:
    """The response media type for an `Accept` header; None when none is acceptable.

    No header, `*/*` and `application/*` mean `application/json`: a client that does not ask
    for `application/graphql-response+json` may not know it (the graphql-http audit's SHOULDs
    47DE and 80D8). Otherwise the acceptable type with the highest q wins; on a tie, a type
    named outright beats a wildcard, then the earlier one wins.
    """
    if not accept or not accept.strip():
        return JSON
    best: tuple[float, bool, int, str] | None = None
    for index, part in enumerate(accept.split(",")):
        media, params = parse_content_type(part)
        media = media.lower()
        try:
            q = float(params.get("q", "1"))
        except ValueError:
            q = 0.0
        if q <= 0:
            continue
        if media == GRAPHQL_RESPONSE_JSON:
            chosen = GRAPHQL_RESPONSE_JSON
        elif media in (JSON, "application/*", "*/*"):
            chosen = JSON
        else:
            continue
        candidate = (q, "*" not in media, -index, chosen)
        if best is None or candidate > best:
            best = candidate
    return best[3] if best else None


async def send_error(
    send: Send,
    status: int,
    message: str,
    extensions: dict[str, Any],
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """Answer a request refused by a middleware, before any GraphQL runs (401/403 at auth,
    429 at the rate limiter, 503 with the database down): GraphQL-shaped, like every other
    refusal, so a client reads the code the same way."""
    body = orjson.dumps({"errors": [{"message": message, "extensions": extensions}]})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", JSON.encode()),
                (b"content-length", str(len(body)).encode()),
                *(headers or ()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
