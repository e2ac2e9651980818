"""What the websocket endpoint (api/graphql/ws.py) checks on the way in and shapes on the way
out (kept apart so that the protocol module stays readable): lone surrogates, error shaping,
the Origin header."""

from __future__ import annotations

import json
import re
from typing import Any

from graphql import GraphQLError
from starlette.types import Scope

from api.graphql.limits import without_suggestions
from core.settings import Settings

# A JSON text can only produce a lone surrogate through a \uD800-\uDFFF escape (the socket's
# text is valid UTF-8): look at the parsed message only when one of those escapes is there.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF][0-9a-fA-F]{2}")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def dumps(value: Any) -> str:
    """Compact JSON for a frame. Never a text the socket cannot send: a string holding a lone
    surrogate (which UTF-8 cannot encode, so the send would fail and cut the socket) is
    escaped as `\\udXXX` instead."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=True, default=str)
    return text


def has_lone_surrogate(text: str, message: Any) -> bool:
    """Does the parsed `message` (of JSON `text`) hold a string that is not valid Unicode?"""
    if _SURROGATE_ESCAPE.search(text) is None:
        return False
    return _holds_surrogate(message)


def _holds_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return _LONE_SURROGATE.search(value) is not None
    if isinstance(value, dict):
        return any(_holds_surrogate(k) or _holds_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_surrogate(v) for v in value)
    return False


def clean_text(text: str) -> str:
    """`text` with lone surrogates replaced (for close reasons and log lines)."""
    return _LONE_SURROGATE.sub("\ufffd", text)


def bad_unicode_error() -> GraphQLError:
    return GraphQLError(
        "The message holds a string that is not valid Unicode (a lone surrogate such as "
        "\\ud800): send UTF-16 surrogates in pairs.",
        extensions={"code": "BAD_USER_INPUT"},
    )


def request_error_code(error: GraphQLError) -> str:
    """The code of a request error (refused before execution) that has none: the same rule
    as over HTTP (core/metrics.py): parse and validation errors are the client's to fix."""
    if error.original_error is not None:
        return "INTERNAL_SERVER_ERROR"
    if error.message.startswith("Variable '$"):  # graphql-core's variable coercion errors
        return "BAD_USER_INPUT"
    return "GRAPHQL_VALIDATION_FAILED"


def request_errors(errors: Any, settings: Settings) -> list[dict[str, Any]]:
    """An `error` frame's payload: each error with an `extensions.code`, and without
    "Did you mean ...?" where suggestions are off (production), as over HTTP
    (api/graphql/masking.py)."""
    shown = []
    for error in errors or ():
        if not settings.suggestions_enabled:
            error = without_suggestions(error)
        formatted = error.formatted
        extensions = dict(formatted.get("extensions") or {})
        if "code" not in extensions:
            extensions["code"] = request_error_code(error)
            formatted = {**formatted, "extensions": extensions}
        shown.append(formatted)
    return shown


def origin_of(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"origin":
            return str(value.decode("latin-1"))
    return None
