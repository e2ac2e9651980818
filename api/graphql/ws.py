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
  with `error` (BAD_USER_INPUT); anywhere else it closes with 4400 (api/graphql/ws_guard.py).
- the credential lives as long as its token: there is no re-authentication on an open socket
  (connection_init comes once), so the socket closes with 4403 when the token expires and
  the client reconnects with a fresh one. Every `subscribe` checks the credential again
  (expired, revoked, key deleted: 4403), and a revocation (domain/accounts/sessions.py)
  closes the user's sockets with 4403 within seconds: heard on Redis pub/sub, and checked
  every `session_check_seconds` in case that message was lost (api/graphql/ws_watch.py);
- a browser `Origin` not allowed by ALLOWED_ORIGINS (core/settings.py) is refused before the
  handshake (HTTP 403); clients without `Origin` are not browsers and pass;
- after the event hub lost Redis and subscribed again (core/hub.py), every socket with a
  subscription gets a `ping` with payload `{"event": "events_missed", "from", "until"}`:
  events published meanwhile were lost, and a client that needs them re-queries.

Multiplexing (how Hasura multiplexes live queries; api/graphql/ws_groups.py): subscribers with
the same (tenant schema, role, scopes, document, operation name, variables) form one `Group`. A
group runs the subscription ONCE through `schema.stream` (so the schema's validation rules,
extensions and the field resolvers all apply), encodes every result ONCE to a JSON string and
hands that same string to each member's bounded send queue; the member's
`{"id":...,"type":"next","payload":` prefix is spliced on when the frame is written. Root fields
whose metadata says `replay_latest` (a state that a late joiner needs, e.g. a task's progress)
give a member that joins a running group the group's last result at once.

Frames are written at once when the socket takes them (no task or future per frame, see
`Connection.post`, api/graphql/ws_connection.py, and docs/decisions.md); while a socket pushes
back, its frames wait in a bounded queue. A socket whose queue is full is a slow consumer: it
is closed with 1013 ("try again later"; clients such as graphql-ws then reconnect with
back-off) and leaves its groups, so it never slows the others down nor holds memory without
bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import weakref
from collections.abc import AsyncIterator, Iterator
from typing import Any

import structlog
from graphql import GraphQLError
from starlette.types import Receive, Scope, Send

from api.graphql.executable import schema as default_schema
from api.graphql.ws_connection import (
    BAD_REQUEST,
    GOING_AWAY,
    INIT_TIMEOUT,
    PROTOCOL,
    SUBPROTOCOL_NOT_ACCEPTABLE,
    Connection,
)
from api.graphql.ws_groups import Group, Member
from api.graphql.ws_guard import origin_of
from api.graphql.ws_watch import SocketWatch
from core import live
from core.hub import REPLAY_LATEST, EventHub
from core.settings import Settings
from domain.accounts.service import Principal
from domain.entitlements import check_within
from domain.errors import PlanLimitReached
from tenants.plans import plan_for
from tenants.policy import policies

log = structlog.get_logger(__name__)


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
        self.groups: dict[tuple[Any, ...], Group] = {}
        self._connections: set[Connection] = set()
        self.ids: Iterator[int] = itertools.count(1)
        self.executions = 0  # group executions (results encoded), for metrics and benchmarks
        self.slow_consumers = 0
        self._replay_fields = self._fields_with(REPLAY_LATEST)
        # Revocations and Redis reconnects (api/graphql/ws_watch.py).
        self.watch = SocketWatch(
            settings,
            lambda: list(self._connections),
            lambda conn: any(isinstance(op, Member) for op in conn.operations.values()),
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
    ) -> Group:
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
            group = Group(self, key, principal, query, variables, operation_name, replay)
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
        conn = Connection(self, send)
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
    async def _texts(receive: Receive, conn: Connection) -> AsyncIterator[str]:
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
    def _init_timed_out(conn: Connection) -> None:
        if not conn.init_received:
            conn.close(INIT_TIMEOUT, "Connection initialisation timeout")
