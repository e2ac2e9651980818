"""Subscriptions over a real websocket speaking graphql-transport-ws."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import websockets
from redis.asyncio import Redis

from domain import events
from tests.collection.test_import import add_accounts, jsonl, rows_for
from tests.conftest import GQL, Server, Tenant, import_file, run_jobs
from tests.wsclient import listening

PROTO = ["graphql-transport-ws"]


async def connect(server: Server, token: str | None) -> Any:
    ws = await websockets.connect(server.ws_url, subprotocols=PROTO)  # type: ignore[list-item]
    payload = {"Authorization": f"Bearer {token}"} if token else {}
    await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
    return ws


async def test_connection_without_token_is_rejected(server: Server) -> None:
    ws = await connect(server, None)
    with pytest.raises(websockets.ConnectionClosed) as info:
        await asyncio.wait_for(ws.recv(), 5)
    assert info.value.rcvd is not None and info.value.rcvd.code == 4403


async def test_post_added_is_scoped_to_the_tenant(
    server: Server, gql: GQL, tenant: Tenant, other_tenant: Tenant, redis: Redis
) -> None:
    await add_accounts(gql, tenant.token, ["live"])
    await add_accounts(gql, other_tenant.token, ["live"])
    subs = []
    for t in (tenant, other_tenant):
        ws = await connect(server, t.token)
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "connection_ack"
        await ws.send(
            json.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {
                        "query": "subscription { postAdded { externalId influencer { displayName } } }"
                    },
                }
            )
        )
        subs.append(ws)
    for t in (tenant, other_tenant):
        await listening(server, redis, t, events.POST_ADDED)
    await import_file(gql, tenant.token, "p.jsonl", jsonl(rows_for(["live"], 2, prefix="s")))
    await run_jobs()
    got = []
    for _ in range(2):
        msg = json.loads(await asyncio.wait_for(subs[0].recv(), 10))
        assert msg["type"] == "next", msg
        got.append(msg["payload"]["data"]["postAdded"]["externalId"])
    assert sorted(got) == ["s0", "s1"]
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(subs[1].recv(), 1.0)  # B hears nothing of A's posts
    for ws in subs:
        await ws.close()
