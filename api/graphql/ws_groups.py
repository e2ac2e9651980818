"""Multiplexed subscriptions (api/graphql/ws.py describes the whole endpoint): subscribers
with the same (tenant schema, role, scopes, document, operation name, variables) form one
`Group`, which runs the subscription once and encodes each result once for all its members."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any, Protocol

import structlog
from graphql import GraphQLError
from strawberry.types.execution import ExecutionResult, PreExecutionError
from strawberry.utils.aio import aclosing

from api.graphql.ws_guard import dumps, request_errors
from core.hub import EventHub
from core.settings import Settings
from domain.accounts.service import Principal
from schema.context import Context
from schema.dataloaders import Loaders

log = structlog.get_logger(__name__)

Item = str | tuple[str, str]  # a whole frame, or (member prefix, shared payload)


# What a group needs of the endpoint and of a socket (ws.py's SubscriptionServer and
# ws_connection.py's Connection): protocols, so that this module imports neither of them.
class Endpoint(Protocol):
    settings: Settings
    hub: EventHub | None
    ids: Iterator[int]  # request ids of the operations run
    schema: Any  # the executable schema (`stream`)
    executions: int  # group executions, for metrics and benchmarks
    groups: dict[tuple[Any, ...], Group]


class Socket(Protocol):
    def post(self, item: Item) -> None: ...

    def forget(self, id_: str, op: Operation) -> bool: ...


_dumps = dumps  # never a text the socket cannot send (api/graphql/ws_guard.py)


def frame(id_: str, type_: str, payload: Any = None) -> str:
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


class Member:
    """One subscriber (a connection's subscription id) in a group."""

    __slots__ = ("conn", "group", "id", "prefix")

    def __init__(self, conn: Socket, id_: str, group: Group) -> None:
        self.conn = conn
        self.id = id_
        self.group = group
        self.prefix = '{"id":' + _dumps(id_) + ',"type":"next","payload":'

    def cancel(self) -> None:
        self.group.leave(self)


class Single:
    """A query or mutation sent over the socket: executed for this subscriber alone."""

    __slots__ = ("id", "task")

    def __init__(self, id_: str, task: asyncio.Task[None]) -> None:
        self.id = id_
        self.task = task

    def cancel(self) -> None:
        self.task.cancel()


Operation = Member | Single


class Group:
    """Subscribers of one (tenant, role, scopes, document, variables): one execution."""

    def __init__(
        self,
        server: Endpoint,
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
        self.members: set[Member] = set()
        self.task: asyncio.Task[None] | None = None

    def join(self, member: Member) -> None:
        self.members.add(member)
        if self.latest is not None:
            member.conn.post((member.prefix, self.latest))
        if self.task is None:
            self.task = asyncio.create_task(self._run(), name=f"ws-group-{id(self):x}")

    def leave(self, member: Member) -> None:
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
                m.conn.post(frame(m.id, frame_type, payload))

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
