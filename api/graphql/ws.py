"""Our own graphql-transport-ws endpoint, with multiplexed subscriptions.

Protocol: https://github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md, kept exact:

- the subprotocol must be `graphql-transport-ws` (otherwise the socket is accepted and closed
  with 4406, as the reference server does);
- `connection_init` must arrive within `init_timeout` seconds (else 4408), only once (a second
  one closes with 4429); its payload carries the credential (`Authorization`, `token` /
  `accessToken`, `X-Tenant` / `tenant`), a bad one closes with 4403;
- `subscribe` before `connection_ack` closes with 4401, a subscribe reusing an id that is still
  running closes with 4409; anything that is not a valid protocol message closes with 4400;
- `ping` is answered with `pong` (echoing its payload), `pong` is ignored; `complete` works in
  both directions; validation errors are answered with `error` (each with `extensions.code`,
  GRAPHQL_VALIDATION_FAILED or BAD_USER_INPUT, and no "Did you mean" where suggestions are
  off), and so is a subscription beyond the tenant's plan (`live_subscriptions`, counted per
  process): an `error` message with `extensions.code` PLAN_LIMIT_REACHED, the socket stays
  open. A lone surrogate (`"\\ud800"`: valid JSON, not Unicode) in a `subscribe` is answered
  with `error` (BAD_USER_INPUT); anywhere else it closes with 4400 (api/ws_guard.py).
- the credential lives as long as its token: there is no re-authentication on an open socket
  (connection_init comes once), so the socket closes with 4403 when the token expires and
  the client reconnects with a fresh one. Every `subscribe` checks the credential again
  (expired, revoked, key deleted: 4403), and a revocation (domain/accounts/sessions.py)
  closes the user's sockets with 4403 within seconds: heard on Redis pub/sub, and checked
  every `session_check_seconds` in case that message was lost (api/ws_watch.py);
- a browser `Origin` not allowed by ALLOWED_ORIGINS (core/settings.py) is refused before the
  handshake (HTTP 403); clients without `Origin` are not browsers and pass;
- after the event hub lost Redis and subscribed again (core/hub.py), every socket with a
  subscription gets a `ping` with payload `{"event": "events_missed", "from", "until"}`:
  events published meanwhile were lost, and a client that needs them re-queries.

Multiplexing (how Hasura multiplexes live queries): subscribers with the same
(tenant schema, role, scopes, document, operation name, variables) form one `_Group`. A group
runs the subscription ONCE through `schema.stream` (so the schema's validation rules,
extensions and the field resolvers all apply), encodes every result ONCE to a JSON string and
hands that same string to each member's bounded send queue; the member's
`{"id":...,"type":"next","payload":` prefix is spliced on when the frame is written. Root fields
whose metadata says `replay_latest` (a state that a late joiner needs, e.g. a task's progress)
give a member that joins a running group the group's last result at once.

Frames are written at once when the socket takes them (no task or future per frame, see
`_Connection.post`); while a socket pushes back, its frames wait in a bounded queue. A socket
whose queue is full is a slow consumer: it is closed with 1013 ("try again later"; clients
such as graphql-ws then reconnect with back-off) and leaves its groups, so it never slows the
others down nor holds memory without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator
from functools import lru_cache
from typing import Any

import structlog
from graphql import (
    FieldNode,
    GraphQLError,
    GraphQLSyntaxError,
    OperationType,
    get_operation_ast,
    parse,
)
from starlette.types import Receive, Scope, Send
from strawberry.types.execution import ExecutionResult, PreExecutionError
from strawberry.utils.aio import aclosing

from api.auth import principal_from_credentials
from api.graphql.executable import schema as default_schema
from api.graphql.ws_guard import (
    bad_unicode_error,
    clean_text,
    dumps,
    has_lone_surrogate,
    origin_of,
    request_errors,
)
from api.graphql.ws_watch import SocketWatch
from api.ratelimit import request_limit
from billing.entitlements import check_within
from billing.plans import plan_for
from core import live
from core.hub import REPLAY_LATEST, EventHub
from core.settings import Settings
from domain.accounts.service import Principal
from domain.errors import DomainError, PlanLimitReached
from schema.context import Context
from schema.dataloaders import Loaders
from tenants.policy import policies

log = structlog.get_logger(__name__)

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

_Item = str | tuple[str, str]  # a whole frame, or (member prefix, shared payload)


_dumps = dumps  # never a text the socket cannot send (api/ws_guard.py)


def _frame(id_: str, type_: str, payload: Any = None) -> str:
    message: dict[str, Any] = {"id": id_, "type": type_}
    if payload is not None:
        message["payload"] = payload
    return _dumps(message)


def result_payload(result: ExecutionResult) -> dict[str, Any]:
    """A `next` message's payload."""
    payload: dict[str, Any] = {"data": result.data}
    if result.errors:
        payload["errors"] = [e.formatted for e in result.errors]
    if result.extensions:
        payload["extensions"] = result.extensions
    return payload


def encode_result(result: ExecutionResult) -> str:
    """A `next` message's payload, encoded once for every member of a group."""
    return _dumps(result_payload(result))


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


class _Member:
    """One subscriber (a connection's subscription id) in a group."""

    __slots__ = ("conn", "group", "id", "prefix")

    def __init__(self, conn: _Connection, id_: str, group: _Group) -> None:
        self.conn = conn
        self.id = id_
        self.group = group
        self.prefix = '{"id":' + _dumps(id_) + ',"type":"next","payload":'

    def cancel(self) -> None:
        self.group.leave(self)


class _Single:
    """A query or mutation sent over the socket: executed for this subscriber alone."""

    __slots__ = ("id", "task")

    def __init__(self, id_: str, task: asyncio.Task[None]) -> None:
        self.id = id_
        self.task = task

    def cancel(self) -> None:
        self.task.cancel()


_Operation = _Member | _Single


class _Group:
    """Subscribers of one (tenant, role, scopes, document, variables): one execution."""

    def __init__(
        self,
        server: SubscriptionServer,
        key: tuple[Any, ...],
        principal: Principal,
        query: str,
        variables: dict[str, Any] | None,
        operation_name: str | None,
        replay: bool,
    ) -> None:
        self.server = server
        self.key = key
        self.principal = principal
        self.query = query
        self.variables = variables
        self.operation_name = operation_name
        self.replay = replay
        self.latest: str | None = None
        self.members: set[_Member] = set()
        self.task: asyncio.Task[None] | None = None

    def join(self, member: _Member) -> None:
        self.members.add(member)
        if self.latest is not None:
            member.conn.post((member.prefix, self.latest))
        if self.task is None:
            self.task = asyncio.create_task(self._run(), name=f"ws-group-{id(self):x}")

    def leave(self, member: _Member) -> None:
        self.members.discard(member)
        if not self.members:
            self._close()

    def _close(self) -> None:
        if self.server.groups.get(self.key) is self:
            del self.server.groups[self.key]
        if self.task is not None and self.task is not asyncio.current_task():
            self.task.cancel()

    def _finish(self, frame_type: str, payload: Any = None) -> None:
        """End every member's operation with `complete` or `error`."""
        self._close()
        members, self.members = self.members, set()
        for m in members:
            if m.conn.forget(m.id, m):
                m.conn.post(_frame(m.id, frame_type, payload))

    async def _run(self) -> None:
        server = self.server
        principal = self.principal
        context = Context(
            request=None,
            response=None,
            settings=server.settings,
            hub=server.hub,
            request_id=f"ws-{next(server.ids)}",
            principal=principal,
            loaders=Loaders(principal.tenant_schema, cache=False),
            connection_params=None,
        )
        try:
            results = await server.schema.stream(
                self.query,
                variable_values=self.variables,
                context_value=context,
                operation_name=self.operation_name,
            )
            async with aclosing(results):
                first = True
                async for result in results:
                    if first and isinstance(result, PreExecutionError):
                        self._finish("error", request_errors(result.errors, server.settings))
                        return
                    first = False
                    if not isinstance(result, ExecutionResult):  # incremental delivery frames
                        error = GraphQLError("Incremental delivery is not supported here")
                        self._finish("error", [error.formatted])
                        return
                    payload = encode_result(result)  # once for the whole group
                    if self.replay:
                        self.latest = payload
                    server.executions += 1
                    members = self.members
                    for i, member in enumerate(tuple(members), 1):
                        if member in members:  # not completed while we yielded below
                            member.conn.post((member.prefix, payload))
                        if i % 1000 == 0:
                            await asyncio.sleep(0)  # let other sockets and groups in
                    if not self.members:  # all left (or were cut) while we delivered
                        return
            self._finish("complete")
        except asyncio.CancelledError:
            raise
        except GraphQLError as exc:  # a syntax error raised by the parser cache's hook
            self._finish("error", request_errors([exc], server.settings))
        except Exception:
            log.exception("subscription_group_failed", tenant=principal.tenant_schema)
            self._finish("complete")


class _Connection:
    """One websocket: protocol state, its operations, its bounded send queue."""

    def __init__(self, server: SubscriptionServer, send: Send) -> None:
        self.server = server
        self._send = send
        self.outbox: deque[_Item] = deque()
        self.limit = server.send_queue_size
        self.init_received = False
        self.principal: Principal | None = None
        # The connection_init credential, checked again on every subscribe.
        self.authorization: str | None = None
        self.tenant: str | None = None
        self.expiry: asyncio.TimerHandle | None = None  # closes the socket (4403) at expiry
        self.operations: dict[str, _Operation] = {}
        self.closing = False
        self.sender: asyncio.Task[None] | None = None  # only while the socket pushes back
        self.close_task: asyncio.Task[None] | None = None

    # --- sending ------------------------------------------------------------------------
    #
    # A frame is written at once when nothing is queued: the server's ASGI `send` normally
    # finishes without suspending (uvicorn only waits when the transport is paused), so we
    # step the coroutine by hand and need no task and no future per frame. When it does
    # suspend (the client reads slowly), a task finishes that send and drains the queue;
    # frames arriving meanwhile queue up to `limit`, and one more cuts the connection.

    def post(self, item: _Item) -> None:
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
                        # What a Task does with a future its coroutine yields: clear the
                        # "blocking" flag the yield set, then wait for it.
                        awaiting._asyncio_future_blocking = False
                        await awaiting
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

    def forget(self, id_: str, op: _Operation) -> bool:
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
            self.post(_PONG if payload is None else _dumps({"type": "pong", "payload": payload}))
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
            self.post(_frame(id_, "error", [bad_unicode_error().formatted]))
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
            self.post(_frame(id_, "error", [error.formatted]))
            return
        kind, root_fields = _operation(query, operation_name)
        if kind is OperationType.SUBSCRIPTION:
            refusal = await self.server.plan_refusal(principal)
            if refusal is not None:
                self.post(_frame(id_, "error", [refusal.formatted]))
                return
            if self.closing or id_ in self.operations:  # changed while the plan was read
                return
            group = self.server.group_for(principal, query, variables, operation_name, root_fields)
            member = _Member(self, id_, group)
            self.operations[id_] = member
            group.join(member)
        else:
            task = asyncio.create_task(self._run_single(id_, query, variables, operation_name))
            self.operations[id_] = _Single(id_, task)

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
                    self.post(_frame(id_, "error", [error.formatted]))
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
                            self.post(_frame(id_, "error", errors))
                        return
                    if isinstance(result, ExecutionResult):
                        self.post(_frame(id_, "next", result_payload(result)))
            if self.forget(id_, op):
                self.post(_frame(id_, "complete"))
        except asyncio.CancelledError:
            raise
        except GraphQLError as exc:  # a syntax error raised by the parser cache's hook
            if self.forget(id_, op):
                self.post(_frame(id_, "error", request_errors([exc], settings)))
        except Exception:
            log.exception("ws_operation_failed")
            if self.forget(id_, op):
                self.post(_frame(id_, "complete"))


_RUNNING: weakref.WeakSet[SubscriptionServer] = weakref.WeakSet()


async def close_all_sockets(code: int = GOING_AWAY) -> None:
    """Close every running endpoint's sockets: for the ASGI server to call when it begins to
    shut down (uvicorn itself would close them with 1012 before the app's lifespan ends)."""
    for server in list(_RUNNING):
        await server.stop(code)


class SubscriptionServer:
    """The ASGI websocket endpoint (mount with `WebSocketRoute("/graphql", server)`).

    `start(hub)` / `stop()` belong in the app's lifespan. Counters for metrics:
    `connections`, `active_subscriptions`, `groups`, `executions`, `slow_consumers`.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        schema: Any = None,
        init_timeout: float = 10.0,
        send_queue_size: int | None = None,
        max_operations: int = 100,
    ) -> None:
        self.settings = settings
        self.schema = schema if schema is not None else default_schema
        self.init_timeout = init_timeout
        self.send_queue_size = send_queue_size or settings.subscription_queue_size
        self.max_operations = max_operations
        self.hub: EventHub | None = None
        self.groups: dict[tuple[Any, ...], _Group] = {}
        self._connections: set[_Connection] = set()
        self.ids = itertools.count(1)
        self.executions = 0  # group executions (results encoded), for metrics and benchmarks
        self.slow_consumers = 0
        self._replay_fields = self._fields_with(REPLAY_LATEST)
        # Revocations and Redis reconnects (api/ws_watch.py).
        self.watch = SocketWatch(
            settings,
            lambda: list(self._connections),
            lambda conn: any(isinstance(op, _Member) for op in conn.operations.values()),
        )

    # --- figures ------------------------------------------------------------------------

    @property
    def connections(self) -> int:
        return len(self._connections)

    @property
    def active_subscriptions(self) -> int:
        return sum(len(g.members) for g in self.groups.values())

    def tenant_subscriptions(self, tenant_schema: str) -> int:
        """Open subscriptions of one tenant on this endpoint (this process)."""
        return sum(len(g.members) for key, g in self.groups.items() if key[0] == tenant_schema)

    async def plan_refusal(self, principal: Principal) -> GraphQLError | None:
        """The error refusing one more subscription of this tenant when its plan's
        `live_subscriptions` are all open (counted per api process), else None."""
        policy = await policies.get(
            principal.tenant_id, self.settings.limits.tenant_policy_ttl_seconds
        )
        plan = plan_for(policy.plan)
        try:
            check_within(
                plan, "live_subscriptions", self.tenant_subscriptions(principal.tenant_schema)
            )
        except PlanLimitReached as exc:
            return GraphQLError(
                exc.message,
                extensions={
                    "code": exc.code,
                    "limit": exc.limit,
                    "plan": exc.plan,
                    "allowed": exc.allowed,
                },
            )
        return None

    # --- lifecycle ----------------------------------------------------------------------

    def start(self, hub: EventHub) -> None:
        self.hub = hub
        _RUNNING.add(self)
        live.register(self)  # the `usage` field's count (core/live.py)
        self.watch.start(hub)

    async def stop(self, code: int = GOING_AWAY, reason: str = "server shutting down") -> None:
        """Close every socket (1001) and wait a moment for the close frames to go out."""
        _RUNNING.discard(self)
        live.unregister(self)
        self.watch.stop()
        closing = []
        for conn in list(self._connections):
            conn.close(code, reason)
            if conn.close_task is not None:
                closing.append(conn.close_task)
        if closing:
            await asyncio.wait(closing, timeout=5)
        for group in list(self.groups.values()):
            if group.task is not None:
                group.task.cancel()
        self.groups.clear()

    # --- groups -------------------------------------------------------------------------

    def _fields_with(self, key: str) -> frozenset[str]:
        subscription = self.schema._schema.subscription_type
        if subscription is None:
            return frozenset()
        names = set()
        for name, field in subscription.fields.items():
            definition = (field.extensions or {}).get("strawberry-definition")
            if definition is not None and (definition.metadata or {}).get(key):
                names.add(name)
        return frozenset(names)

    def group_for(
        self,
        principal: Principal,
        query: str,
        variables: dict[str, Any] | None,
        operation_name: str | None,
        root_fields: frozenset[str] = frozenset(),
    ) -> _Group:
        # Everything that can change what the selection resolves to: the tenant, the role and
        # scopes (permissions), the document and its variables. Not the user: subscription
        # fields must not depend on who the user is (decisions.md).
        key = (
            principal.tenant_schema,
            principal.role,
            tuple(sorted(principal.scopes)),
            query,
            operation_name,
            json.dumps(variables, sort_keys=True, separators=(",", ":")) if variables else "",
        )
        group = self.groups.get(key)
        if group is None:
            replay = bool(root_fields & self._replay_fields)
            group = _Group(self, key, principal, query, variables, operation_name, replay)
            self.groups[key] = group
        return group

    # --- ASGI ---------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "websocket"
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        origin = origin_of(scope)
        if not self.settings.websocket_origin_allowed(origin):
            # Cross-site websocket hijacking: a page elsewhere would ride on the user's
            # browser. Closed before the accept, which the server answers with HTTP 403.
            log.warning("websocket_origin_refused", origin=(origin or "")[:200])
            await send({"type": "websocket.close", "code": 1008})
            return
        if PROTOCOL not in scope.get("subprotocols", ()):
            await send({"type": "websocket.accept"})
            await send(
                {
                    "type": "websocket.close",
                    "code": SUBPROTOCOL_NOT_ACCEPTABLE,
                    "reason": "Subprotocol not acceptable",
                }
            )
            return
        await send({"type": "websocket.accept", "subprotocol": PROTOCOL})
        conn = _Connection(self, send)
        self._connections.add(conn)
        loop = asyncio.get_running_loop()
        timer = loop.call_later(self.init_timeout, self._init_timed_out, conn)
        try:
            async for text in self._texts(receive, conn):
                await conn.handle(text)
                if conn.init_received:
                    timer.cancel()
        finally:
            timer.cancel()
            self._connections.discard(conn)
            conn._gone()
            if conn.sender is not None:
                conn.sender.cancel()
            if conn.close_task is not None:
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await asyncio.wait_for(conn.close_task, timeout=1)

    @staticmethod
    async def _texts(receive: Receive, conn: _Connection) -> AsyncIterator[str]:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            if conn.closing:
                continue  # drain until the closing handshake completes
            text = message.get("text")
            if text is None:
                conn.close(BAD_REQUEST, "Invalid message received: binary frame")
                continue
            yield text

    @staticmethod
    def _init_timed_out(conn: _Connection) -> None:
        if not conn.init_received:
            conn.close(INIT_TIMEOUT, "Connection initialisation timeout")
