"""The graphql-transport-ws protocol on one socket (api/graphql/ws.py describes the endpoint):
its state machine, its operations and its bounded send queue."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from functools import lru_cache
from typing import Any, Protocol

import structlog
from graphql import (
    FieldNode,
    GraphQLError,
    GraphQLSyntaxError,
    OperationType,
    get_operation_ast,
    parse,
)
from starlette.types import Send
from strawberry.types.execution import ExecutionResult, PreExecutionError
from strawberry.utils.aio import aclosing

from api.auth import principal_from_credentials
from api.graphql.ws_groups import (
    Endpoint,
    Group,
    Item,
    Member,
    Operation,
    Single,
    frame,
    result_payload,
)
from api.graphql.ws_guard import (
    bad_unicode_error,
    clean_text,
    dumps,
    has_lone_surrogate,
    request_errors,
)
from api.ratelimit import request_limit
from domain.accounts.service import Principal
from domain.errors import DomainError
from schema.context import Context
from schema.dataloaders import Loaders

log = structlog.get_logger(__name__)


class Server(Endpoint, Protocol):
    """What a connection needs of its endpoint (ws.py's SubscriptionServer), as a protocol so
    that this module does not import the server that imports it."""

    send_queue_size: int
    slow_consumers: int
    max_operations: int

    async def plan_refusal(self, principal: Principal) -> GraphQLError | None: ...

    def group_for(
        self,
        principal: Principal,
        query: str,
        variables: dict[str, Any] | None,
        operation_name: str | None,
        root_fields: frozenset[str] = ...,
    ) -> Group: ...


PROTOCOL = "graphql-transport-ws"

# Close codes: the protocol's (graphql-ws `CloseCode`) and two standard ones.
BAD_REQUEST = 4400
UNAUTHORIZED = 4401
FORBIDDEN = 4403
SUBPROTOCOL_NOT_ACCEPTABLE = 4406
INIT_TIMEOUT = 4408
SUBSCRIBER_EXISTS = 4409
TOO_MANY_INITIALISATION_REQUESTS = 4429
INTERNAL_ERROR = 4500
GOING_AWAY = 1001  # the server shuts down
TRY_AGAIN_LATER = 1013  # slow consumer: its send queue was full


_ACK = '{"type":"connection_ack"}'
_PONG = '{"type":"pong"}'


@lru_cache(maxsize=1000)
def _operation(query: str, operation_name: str | None) -> tuple[OperationType, frozenset[str]]:
    """The operation's type and root field names; a query type (executed on its own, where the
    schema's pipeline reports the error) when the document does not parse or pick one."""
    try:
        operation = get_operation_ast(parse(query), operation_name)
    except GraphQLSyntaxError:
        return OperationType.QUERY, frozenset()
    if operation is None:
        return OperationType.QUERY, frozenset()
    fields = frozenset(
        s.name.value for s in operation.selection_set.selections if isinstance(s, FieldNode)
    )
    return operation.operation, fields


def credentials(params: dict[str, Any]) -> tuple[str | None, str | None]:
    """(Authorization header value, tenant slug) from a connection_init payload."""
    auth = params.get("Authorization") or params.get("authorization")
    token = params.get("token") or params.get("accessToken")
    if not auth and token:
        auth = f"Bearer {token}"
    tenant = params.get("X-Tenant") or params.get("x-tenant") or params.get("tenant")
    return (str(auth) if auth else None, str(tenant) if tenant else None)


class Connection:
    """One websocket: protocol state, its operations, its bounded send queue."""

    def __init__(self, server: Server, send: Send) -> None:
        self.server = server
        self._send = send
        self.outbox: deque[Item] = deque()
        self.limit = server.send_queue_size
        self.init_received = False
        self.principal: Principal | None = None
        # The connection_init credential, checked again on every subscribe.
        self.authorization: str | None = None
        self.tenant: str | None = None
        self.expiry: asyncio.TimerHandle | None = None  # closes the socket (4403) at expiry
        self.operations: dict[str, Operation] = {}
        self.closing = False
        self.sender: asyncio.Task[None] | None = None  # only while the socket pushes back
        self.close_task: asyncio.Task[None] | None = None

    # --- sending ------------------------------------------------------------------------
    #
    # A frame is written at once when nothing is queued: the server's ASGI `send` normally
    # finishes without suspending (uvicorn only waits when the transport is paused), so we
    # step the coroutine by hand (`coro.send(None)`, the coroutine protocol of PEP 492) and
    # need no task and no future per frame. A departure from "let asyncio run coroutines",
    # kept because it is the fan-out's hot path: a task per frame (or an eager task, which
    # Python 3.11 does not have) costs an allocation and a loop turn for every member of
    # every group (bench/subscriptions.py; docs/decisions.md). When the send does suspend (the
    # client reads slowly), a task finishes it and drains the queue; frames arriving
    # meanwhile queue up to `limit`, and one more cuts the connection.

    def post(self, item: Item) -> None:
        """Send a frame now, or queue it behind a pending one; a full queue means a slow
        consumer, which is closed."""
        if self.closing:
            return
        if self.sender is not None:
            if len(self.outbox) >= self.limit:
                self.server.slow_consumers += 1
                log.warning("slow_subscriber_closed", queued=len(self.outbox))
                self.close(TRY_AGAIN_LATER, "send queue full: consumer too slow")
                return
            self.outbox.append(item)
            return
        text = item if isinstance(item, str) else item[0] + item[1] + "}"
        coro: Any = self._send({"type": "websocket.send", "text": text})
        try:
            awaiting = coro.send(None)
        except StopIteration:
            return  # written
        except Exception:  # the socket is gone (uvicorn raises ClientDisconnected)
            self._gone()
            return
        self.sender = asyncio.create_task(self._finish(coro, awaiting))

    async def _finish(self, coro: Any, awaiting: Any) -> None:
        """Finish a send that suspended on `awaiting`, then send what queued up meanwhile."""
        try:
            while True:
                try:
                    if awaiting is None:  # a bare yield (asyncio.sleep(0))
                        await asyncio.sleep(0)
                    else:
                        # The future the send is suspended on: wait until it is done (public
                        # API; the send coroutine reads its outcome when resumed below).
                        # `await awaiting` would not do: it was already yielded once.
                        await asyncio.wait((awaiting,))
                except asyncio.CancelledError:
                    coro.close()
                    raise
                except Exception:
                    pass  # the send coroutine sees the outcome itself
                try:
                    awaiting = coro.send(None)
                except StopIteration:
                    break
            outbox, send = self.outbox, self._send
            while outbox:
                item = outbox.popleft()
                text = item if isinstance(item, str) else item[0] + item[1] + "}"
                await send({"type": "websocket.send", "text": text})
        except asyncio.CancelledError:
            raise
        except Exception:
            self._gone()
        finally:
            if asyncio.current_task() is self.sender:
                self.sender = None

    def _gone(self) -> None:
        self.closing = True
        if self.expiry is not None:
            self.expiry.cancel()
        self.outbox.clear()
        self._drop_operations()

    def close(self, code: int, reason: str = "") -> None:
        """Stop everything on this socket and send a close frame (once)."""
        if self.closing:
            return
        self.closing = True
        if self.expiry is not None:
            self.expiry.cancel()
        self._drop_operations()
        self.outbox.clear()
        pending = self.sender
        if pending is not None:
            pending.cancel()
        self.close_task = asyncio.create_task(self._send_close(pending, code, reason))

    async def _send_close(self, pending: asyncio.Task[None] | None, code: int, reason: str) -> None:
        if pending is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await pending  # a frame being written finishes first (the task is cancelled)
        # at most 123 bytes of valid UTF-8 (RFC 6455 5.5), whatever the reason quotes
        text = clean_text(reason).encode()[:120].decode(errors="ignore")
        with contextlib.suppress(Exception):
            await self._send({"type": "websocket.close", "code": code, "reason": text})

    def _drop_operations(self) -> None:
        operations, self.operations = self.operations, {}
        for op in operations.values():
            op.cancel()

    def forget(self, id_: str, op: Operation) -> bool:
        """Remove a finished operation; False when it was already gone (cancelled)."""
        if self.operations.get(id_) is op:
            del self.operations[id_]
            return True
        return False

    # --- protocol -----------------------------------------------------------------------

    async def handle(self, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            self.close(BAD_REQUEST, "Invalid message received: not JSON")
            return
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            self.close(BAD_REQUEST, "Invalid message received: no type")
            return
        kind = message["type"]
        if has_lone_surrogate(text, message):
            self._bad_unicode(message)
            return
        payload = message.get("payload")
        if kind in ("ping", "pong", "connection_init") and not (
            payload is None or isinstance(payload, dict)
        ):
            self.close(BAD_REQUEST, f"Invalid message received: bad {kind} payload")
            return
        if kind == "connection_init":
            await self._on_init(payload or {})
        elif kind == "ping":
            self.post(_PONG if payload is None else dumps({"type": "pong", "payload": payload}))
        elif kind == "pong":
            pass
        elif kind == "subscribe":
            await self._on_subscribe(message)
        elif kind == "complete":
            id_ = message.get("id")
            if not isinstance(id_, str) or not id_:
                self.close(BAD_REQUEST, "Invalid message received: complete without id")
                return
            op = self.operations.pop(id_, None)
            if op is not None:
                op.cancel()
        else:
            self.close(BAD_REQUEST, f"Invalid message received: unexpected type {kind[:40]!r}")

    def _bad_unicode(self, message: dict[str, Any]) -> None:
        """A message holding a lone surrogate (JSON allows `"\\ud800"`, Unicode does not). A
        subscribe is answered `error` (BAD_USER_INPUT) and the socket serves on; anything else
        cannot be answered and is closed with 4400, as any unparseable message."""
        id_ = message.get("id")
        if (
            message.get("type") == "subscribe"
            and self.principal is not None
            and isinstance(id_, str)
            and id_
            and not has_lone_surrogate(dumps(id_), id_)
            and id_ not in self.operations
        ):
            self.post(frame(id_, "error", [bad_unicode_error().formatted]))
            return
        self.close(BAD_REQUEST, "Invalid message received: not valid Unicode (lone surrogate)")

    async def _on_init(self, params: dict[str, Any]) -> None:
        if self.init_received:
            self.close(TOO_MANY_INITIALISATION_REQUESTS, "Too many initialisation requests")
            return
        self.init_received = True
        authorization, tenant = credentials(params)
        try:
            principal = await principal_from_credentials(
                self.server.settings, authorization, tenant
            )
        except DomainError as exc:
            self.close(FORBIDDEN, f"Forbidden: {exc.message}")
            return
        if principal is None:
            self.close(FORBIDDEN, "Forbidden: authentication required")
            return
        if self.closing:  # timed out or cut while the credential was checked
            return
        self.principal = principal
        self.authorization, self.tenant = authorization, tenant
        if principal.expires_at is not None:
            # No re-authentication on an open socket (connection_init comes once): at its
            # token's expiry the socket closes with 4403 and the client reconnects with a
            # fresh token.
            self.expiry = asyncio.get_running_loop().call_later(
                max(0.0, principal.expires_at - time.time()), self._expired
            )
        self.post(_ACK)

    def _expired(self) -> None:
        self.close(FORBIDDEN, "Forbidden: access token expired")

    async def _recheck(self) -> Principal | None:
        """The connection's credential checked again (expired, revoked, key deleted, member
        removed...): its current principal, or None once the socket is closed 4403."""
        try:
            principal = await principal_from_credentials(
                self.server.settings, self.authorization, self.tenant
            )
        except DomainError as exc:
            self.close(FORBIDDEN, f"Forbidden: {exc.message}")
            return None
        if principal is None:
            self.close(FORBIDDEN, "Forbidden: authentication required")
            return None
        if self.closing:
            return None
        self.principal = principal
        return principal

    async def _on_subscribe(self, message: dict[str, Any]) -> None:
        id_ = message.get("id")
        payload = message.get("payload")
        if not isinstance(id_, str) or not id_ or not isinstance(payload, dict):
            self.close(BAD_REQUEST, "Invalid message received: subscribe needs id and payload")
            return
        query = payload.get("query")
        variables = payload.get("variables")
        operation_name = payload.get("operationName")
        extensions = payload.get("extensions")
        if (
            not isinstance(query, str)
            or not (variables is None or isinstance(variables, dict))
            or not (operation_name is None or isinstance(operation_name, str))
            or not (extensions is None or isinstance(extensions, dict))
        ):
            self.close(BAD_REQUEST, "Invalid message received: bad subscribe payload")
            return
        if self.principal is None:
            self.close(UNAUTHORIZED, "Unauthorized")
            return
        principal = await self._recheck()
        if principal is None:
            return
        if id_ in self.operations:
            self.close(SUBSCRIBER_EXISTS, f"Subscriber for {id_[:80]} already exists")
            return
        if len(self.operations) >= self.server.max_operations:
            error = GraphQLError("Too many operations on this connection")
            self.post(frame(id_, "error", [error.formatted]))
            return
        kind, root_fields = _operation(query, operation_name)
        if kind is OperationType.SUBSCRIPTION:
            refusal = await self.server.plan_refusal(principal)
            if refusal is not None:
                self.post(frame(id_, "error", [refusal.formatted]))
                return
            if self.closing or id_ in self.operations:  # changed while the plan was read
                return
            group = self.server.group_for(principal, query, variables, operation_name, root_fields)
            member = Member(self, id_, group)
            self.operations[id_] = member
            group.join(member)
        else:
            task = asyncio.create_task(self._run_single(id_, query, variables, operation_name))
            self.operations[id_] = Single(id_, task)

    async def _run_single(
        self, id_: str, query: str, variables: dict[str, Any] | None, operation_name: str | None
    ) -> None:
        """Queries and mutations (and documents that do not parse): executed on their own."""
        assert self.principal is not None
        context = Context(
            request=None,
            response=None,
            settings=self.server.settings,
            hub=self.server.hub,
            request_id=f"ws-{next(self.server.ids)}",
            principal=self.principal,
            loaders=Loaders(self.principal.tenant_schema),
            connection_params=None,
        )
        op = self.operations.get(id_)
        if op is None:
            return
        settings = self.server.settings
        if settings.rate_limits.enabled:  # metered like an HTTP request (api/ratelimit.py)
            decision = await request_limit(settings, self.principal)
            if decision is not None and not decision.allowed:
                if self.forget(id_, op):
                    error = GraphQLError(
                        "rate limit exceeded: this credential or tenant made too many requests",
                        extensions={
                            "code": "RATE_LIMITED",
                            "retryAfter": round(decision.retry_after, 3),
                        },
                    )
                    self.post(frame(id_, "error", [error.formatted]))
                return
        try:
            results = await self.server.schema.stream(
                query,
                variable_values=variables,
                context_value=context,
                operation_name=operation_name,
            )
            async with aclosing(results):
                async for result in results:
                    if isinstance(result, PreExecutionError):
                        if self.forget(id_, op):
                            errors = request_errors(result.errors, settings)
                            self.post(frame(id_, "error", errors))
                        return
                    if isinstance(result, ExecutionResult):
                        self.post(frame(id_, "next", result_payload(result)))
            if self.forget(id_, op):
                self.post(frame(id_, "complete"))
        except asyncio.CancelledError:
            raise
        except GraphQLError as exc:  # a syntax error raised by the parser cache's hook
            if self.forget(id_, op):
                self.post(frame(id_, "error", request_errors([exc], settings)))
        except Exception:
            log.exception("ws_operation_failed")
            if self.forget(id_, op):
                self.post(frame(id_, "complete"))
