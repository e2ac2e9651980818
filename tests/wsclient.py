"""A graphql-transport-ws client for tests, and the waits that make subscription tests
deterministic: a test that subscribes and then causes an event must know the server is
listening before it causes it, and a fixed sleep is either too short on a busy machine or
wasted time on an idle one.

- `subscribe` sends `subscribe` then `ping`: the `pong` proves the server has handled the
  subscribe (it answers frames in order). The subscription's execution, which subscribes the
  event hub to Redis, runs in a task of its own and may not be there yet.
- `wait_subscribed` waits until Redis reports a connection subscribed to a tenant's channel:
  from then on a publish reaches that process. Works for any process (the session's app, a
  `trendscope api` subprocess, a second endpoint).
- `listening` waits until `count` subscriptions of the session's in-process app have entered
  its event hub on a tenant's channel and Redis has the hub's subscription: needed when
  several subscriptions share a channel (Redis sees one connection for all of them)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
import websockets
from redis.asyncio import Redis
from websockets.asyncio.client import ClientConnection
from websockets.typing import Subprotocol

from core import hub
from domain import events
from tests.conftest import Server, Tenant

PROTO = [Subprotocol("graphql-transport-ws")]
POST_ADDED = "subscription { postAdded { externalId text likes influencer { displayName } } }"


async def open_ws(url: str, **kw: Any) -> ClientConnection:
    return await websockets.connect(url, subprotocols=PROTO, **kw)


async def send(ws: ClientConnection, message: dict[str, Any]) -> None:
    await ws.send(json.dumps(message))


async def recv(ws: ClientConnection, wait: float = 10) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), wait))
    return message


async def connected(url: str, token: str, **kw: Any) -> ClientConnection:
    ws = await open_ws(url, **kw)
    await send(ws, {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
    assert await recv(ws) == {"type": "connection_ack"}
    return ws


async def subscribe(
    ws: ClientConnection, id_: str, query: str, variables: dict[str, Any] | None = None
) -> None:
    """Subscribe, then ping: the pong proves the server has registered the subscription."""
    await send(
        ws, {"id": id_, "type": "subscribe", "payload": {"query": query, "variables": variables}}
    )
    await send(ws, {"type": "ping"})
    assert await recv(ws) == {"type": "pong"}


async def close_code(ws: ClientConnection, wait: float = 10) -> int:
    """Read until the server closes the socket; the close code it sent."""
    with pytest.raises(websockets.ConnectionClosed) as info:
        while True:
            await asyncio.wait_for(ws.recv(), wait)
    assert info.value.rcvd is not None, "closed without a close frame"
    return info.value.rcvd.code


async def _until(done: Callable[[], Any], what: str) -> None:
    for _ in range(500):  # 10 s
        if await done():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(what)


async def wait_subscribed(
    redis: Redis, tenant: Tenant, count: int = 1, *, event: str = events.POST_ADDED
) -> None:
    """Until `count` Redis connections are subscribed to `tenant`'s `event` channel."""
    channel = hub.channel(tenant.schema, event)

    async def done() -> bool:
        got = dict(await redis.pubsub_numsub(channel))
        return bool(got.get(channel.encode(), got.get(channel, 0)) >= count)  # type: ignore[call-overload]

    await _until(done, f"nobody subscribed to {channel}")


async def listening(
    server: Server, redis: Redis, tenant: Tenant, event: str, count: int = 1
) -> None:
    """Until `count` subscriptions of the session's app listen on `tenant`'s `event` channel."""
    app_hub = server.app.state.hub
    channel = hub.channel(tenant.schema, event)

    async def entered() -> bool:
        return bool(app_hub.subscribers(channel) >= count)

    await _until(entered, f"{count} subscriptions to {channel} expected")
    await wait_subscribed(redis, tenant, event=event)
