"""Our graphql-transport-ws endpoint (api/graphql/ws.py): the protocol's close codes, ping/pong,
complete both ways, multiplexing (one execution, identical bytes), tenant isolation, a slow
subscriber cut without affecting the others, resubscription after the Redis pub/sub connection
is killed, and closing with 1001 on shutdown.

Most tests talk to the session's real app. Those that need tighter limits (a short init
timeout, a small send queue) or to look at the server's counters run a second endpoint, the
same `SubscriptionServer` with its own `EventHub` and Redis connection, in this process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import uvicorn
import websockets
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from websockets.typing import Subprotocol

from api.graphql.ws import SubscriptionServer
from core import hub
from core.hub import EventHub
from core.settings import get_settings
from domain import events
from domain.posts.models import Post
from tenants.tx import tenant_tx
from tests.collection.test_import import add_accounts, jsonl, rows_for
from tests.conftest import (
    GQL,
    Server,
    Services,
    Tenant,
    _free_port,
    api_process,
    import_file,
    run_jobs,
)
from tests.wsclient import (
    POST_ADDED,
    close_code,
    connected,
    open_ws,
    recv,
    send,
    subscribe,
    wait_subscribed,
)

# --- helpers ----------------------------------------------------------------------------------


async def a_post(gql: GQL, tenant: Tenant, text_size: int = 0) -> tuple[int, int]:
    """Import one post for `tenant` (with a text of `text_size` characters when given); its
    (post id, influencer id)."""
    await add_accounts(gql, tenant.token, ["live"])
    rows = rows_for(["live"], 1, prefix="w")
    if text_size:
        rows[0]["text"] = "x" * text_size
    await import_file(gql, tenant.token, "p.jsonl", jsonl(rows))
    await run_jobs()
    async with tenant_tx(tenant.schema):
        post = await Post.filter(external_id="w0").prefetch_related("account").get()
        return post.id, post.account.influencer_id  # type: ignore[attr-defined]


async def publish(redis: Redis, tenant: Tenant, post_id: int, influencer_id: int) -> None:
    """What `tenants.outbox.publish` publishes after the commit that stored a post."""
    payload = json.dumps({"id": post_id, "influencer_id": influencer_id})
    await redis.publish(hub.channel(tenant.schema, events.POST_ADDED), payload)


@dataclass
class Endpoint:
    url: str
    ws: SubscriptionServer
    hub: EventHub
    hub_name: str  # the Redis CLIENT SETNAME of its hub's connections


@pytest.fixture
async def endpoint(server: Server, services: Services) -> AsyncIterator[Endpoint]:
    """A second websocket endpoint (real `SubscriptionServer` + `EventHub`) with a 0.5 s init
    timeout and an 8-frame send queue, so that those limits are reached quickly."""
    name = f"ws-test-{uuid.uuid4().hex[:8]}"
    redis = Redis.from_url(services.redis_url, client_name=name)
    hub = EventHub(redis, queue_size=100_000)
    await hub.start()
    subscriptions = SubscriptionServer(get_settings(), init_timeout=0.5, send_queue_size=8)
    subscriptions.start(hub)
    app = Starlette(routes=[WebSocketRoute("/graphql", subscriptions)])
    port = _free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        ws_per_message_deflate=False,
    )
    srv = uvicorn.Server(config)
    task = asyncio.create_task(srv.serve())
    while not srv.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield Endpoint(f"ws://127.0.0.1:{port}/graphql", subscriptions, hub, name)
    finally:
        await subscriptions.stop()
        srv.should_exit = True
        await task
        await hub.stop()
        await redis.aclose()


# --- the protocol -----------------------------------------------------------------------------


async def test_other_subprotocols_are_refused_with_4406(server: Server) -> None:
    ws = await websockets.connect(server.ws_url, subprotocols=[Subprotocol("graphql-ws")])
    assert ws.subprotocol is None
    assert await close_code(ws) == 4406


async def test_connection_init_must_come_in_time(endpoint: Endpoint) -> None:
    ws = await open_ws(endpoint.url)
    assert await close_code(ws) == 4408


async def test_bad_credentials_are_forbidden(server: Server) -> None:
    for payload in ({}, {"Authorization": "Bearer not-a-jwt"}, {"token": "nope"}):
        ws = await open_ws(server.ws_url)
        await send(ws, {"type": "connection_init", "payload": payload})
        assert await close_code(ws) == 4403


async def test_a_second_init_is_4429(server: Server, tenant: Tenant) -> None:
    ws = await connected(server.ws_url, tenant.token)
    await send(ws, {"type": "connection_init", "payload": {}})
    assert await close_code(ws) == 4429


async def test_subscribe_before_ack_is_4401(server: Server) -> None:
    ws = await open_ws(server.ws_url)
    await send(ws, {"id": "1", "type": "subscribe", "payload": {"query": POST_ADDED}})
    assert await close_code(ws) == 4401


async def test_a_running_id_cannot_be_reused_4409(server: Server, tenant: Tenant) -> None:
    ws = await connected(server.ws_url, tenant.token)
    await subscribe(ws, "1", POST_ADDED)
    await send(ws, {"id": "1", "type": "subscribe", "payload": {"query": POST_ADDED}})
    assert await close_code(ws) == 4409


@pytest.mark.parametrize(
    "frame",
    [
        "not json",
        json.dumps(["a list"]),
        json.dumps({"type": "hello"}),
        json.dumps({"type": "next", "id": "1", "payload": {}}),
        json.dumps({"type": "subscribe", "payload": {"query": POST_ADDED}}),  # no id
        json.dumps({"type": "subscribe", "id": "1", "payload": {"query": 42}}),
        json.dumps({"type": "subscribe", "id": "1", "payload": {"query": "{a}", "variables": []}}),
        json.dumps({"type": "ping", "payload": "not an object"}),
        b"\x00binary",
    ],
)
async def test_invalid_messages_are_4400(server: Server, tenant: Tenant, frame: str) -> None:
    ws = await connected(server.ws_url, tenant.token)
    await ws.send(frame)
    assert await close_code(ws) == 4400


async def test_ping_pong(server: Server, tenant: Tenant) -> None:
    ws = await open_ws(server.ws_url)
    await send(ws, {"type": "ping", "payload": {"t": 1}})  # allowed before init too
    assert await recv(ws) == {"type": "pong", "payload": {"t": 1}}
    await send(ws, {"type": "connection_init", "payload": {"token": tenant.token}})
    assert await recv(ws) == {"type": "connection_ack"}
    await send(ws, {"type": "ping"})
    assert await recv(ws) == {"type": "pong"}
    await send(ws, {"type": "pong"})  # unsolicited pongs are ignored
    await send(ws, {"type": "ping"})
    assert await recv(ws) == {"type": "pong"}
    await ws.close()


async def test_validation_errors_answer_error(server: Server, tenant: Tenant) -> None:
    ws = await connected(server.ws_url, tenant.token)
    await send(ws, {"id": "v", "type": "subscribe", "payload": {"query": "subscription { nope }"}})
    message = await recv(ws)
    assert message["type"] == "error" and message["id"] == "v"
    assert "nope" in message["payload"][0]["message"]
    # the id is free again and the socket still works
    await subscribe(ws, "v", POST_ADDED)
    await ws.close()


async def test_queries_run_once_and_complete(server: Server, tenant: Tenant) -> None:
    ws = await connected(server.ws_url, tenant.token)
    await send(
        ws, {"id": "q", "type": "subscribe", "payload": {"query": "{ viewer { user { email } } }"}}
    )
    first = await recv(ws)
    assert first["type"] == "next" and first["id"] == "q", first
    assert first["payload"]["data"]["viewer"]["user"]["email"] == tenant.email
    assert await recv(ws) == {"id": "q", "type": "complete"}
    await ws.close()


async def test_client_complete_stops_only_that_subscription(
    server: Server, gql: GQL, tenant: Tenant, redis: Redis
) -> None:
    post_id, influencer_id = await a_post(gql, tenant)
    ws = await connected(server.ws_url, tenant.token)
    await subscribe(ws, "a", POST_ADDED)
    await subscribe(ws, "b", POST_ADDED)  # same document: the same group, two members
    await send(ws, {"id": "a", "type": "complete"})
    await wait_subscribed(redis, tenant)
    await publish(redis, tenant, post_id, influencer_id)
    message = await recv(ws)
    assert message["id"] == "b" and message["type"] == "next", message
    await send(ws, {"type": "ping"})
    assert await recv(ws) == {"type": "pong"}  # nothing for "a" was queued before it
    await ws.close()


# --- multiplexing -----------------------------------------------------------------------------


async def test_a_group_executes_once_and_sends_identical_bytes(
    endpoint: Endpoint, gql: GQL, tenant: Tenant, redis: Redis
) -> None:
    post_id, influencer_id = await a_post(gql, tenant)
    sockets = [await connected(endpoint.url, tenant.token) for _ in range(3)]
    for ws in sockets:
        await subscribe(ws, "1", POST_ADDED)
    assert len(endpoint.ws.groups) == 1 and endpoint.ws.active_subscriptions == 3
    await wait_subscribed(redis, tenant)
    for _ in range(2):
        await publish(redis, tenant, post_id, influencer_id)
    frames = [[await asyncio.wait_for(ws.recv(), 10) for _ in range(2)] for ws in sockets]
    assert frames[0] == frames[1] == frames[2]  # byte for byte
    message = json.loads(frames[0][0])
    assert message["type"] == "next" and message["id"] == "1"
    assert message["payload"]["data"]["postAdded"]["externalId"] == "w0"
    assert endpoint.ws.executions == 2  # once per event, not once per subscriber
    for ws in sockets:
        await ws.close()


async def test_tenants_never_share_a_group(
    endpoint: Endpoint, gql: GQL, tenant: Tenant, other_tenant: Tenant, redis: Redis
) -> None:
    post_id, influencer_id = await a_post(gql, tenant)
    a = await connected(endpoint.url, tenant.token)
    b = await connected(endpoint.url, other_tenant.token)
    await subscribe(a, "1", POST_ADDED)
    await subscribe(b, "1", POST_ADDED)  # the very same document and id
    assert len(endpoint.ws.groups) == 2
    await wait_subscribed(redis, tenant)
    await publish(redis, tenant, post_id, influencer_id)
    assert (await recv(a))["payload"]["data"]["postAdded"]["externalId"] == "w0"
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(b.recv(), 1.0)  # B hears nothing of A's post
    await a.close()
    await b.close()


async def test_a_late_joiner_gets_a_task_state_at_once(
    endpoint: Endpoint, gql: GQL, tenant: Tenant
) -> None:
    """collectionTaskUpdated streams a state (REPLAY_LATEST): joining a running group sends
    the group's latest result at once, as a fresh subscription would."""
    await add_accounts(gql, tenant.token, ["late"])
    started = await import_file(gql, tenant.token, "p.jsonl", jsonl(rows_for(["late"], 1)))
    query = "subscription($id: ID!) { collectionTaskUpdated(id: $id) { status } }"
    variables = {"id": started["task"]["id"]}
    first = await connected(endpoint.url, tenant.token)
    await send(
        first, {"id": "1", "type": "subscribe", "payload": {"query": query, "variables": variables}}
    )
    assert (await recv(first))["payload"]["data"]["collectionTaskUpdated"]["status"] == "PENDING"
    late = await connected(endpoint.url, tenant.token)
    await send(
        late, {"id": "9", "type": "subscribe", "payload": {"query": query, "variables": variables}}
    )
    message = await recv(late)
    assert (
        message["id"] == "9"
        and message["payload"]["data"]["collectionTaskUpdated"]["status"] == "PENDING"
    )
    assert len(endpoint.ws.groups) == 1
    await run_jobs()
    for ws, id_ in ((first, "1"), (late, "9")):
        while (message := await recv(ws))["type"] == "next":
            status = message["payload"]["data"]["collectionTaskUpdated"]["status"]
        assert message == {"id": id_, "type": "complete"} and status == "SUCCEEDED"
        await ws.close()


# --- slow consumers, Redis reconnects, shutdown -----------------------------------------------


async def test_a_slow_subscriber_is_cut_without_affecting_the_others(
    endpoint: Endpoint, gql: GQL, tenant: Tenant, redis: Redis
) -> None:
    # 20 KB frames, so that the kernel's socket buffers (up to 4 MB) fill in a few hundred.
    post_id, influencer_id = await a_post(gql, tenant, text_size=20_000)
    fast = await connected(endpoint.url, tenant.token)
    # The slow one reads nothing: a small receive buffer and a 1-frame client queue make the
    # server's writes back up.
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", int(endpoint.url.split(":")[2].split("/")[0])))
    sock.setblocking(False)
    slow = await connected(endpoint.url, tenant.token, sock=sock, max_queue=1)
    await subscribe(fast, "1", POST_ADDED)
    await subscribe(slow, "1", POST_ADDED)
    await wait_subscribed(redis, tenant)
    sent = 0
    while endpoint.ws.slow_consumers == 0:
        assert sent < 2_000, "the slow subscriber was never cut"
        for _ in range(25):
            await publish(redis, tenant, post_id, influencer_id)
        sent += 25
        for _ in range(25):  # the fast one gets every event, in step with publishing
            assert (await recv(fast))["type"] == "next"
    assert endpoint.ws.active_subscriptions == 1  # the slow one left its group
    for _ in range(25):
        await publish(redis, tenant, post_id, influencer_id)
    for _ in range(25):
        assert (await recv(fast))["type"] == "next"
    # The slow one, once it reads again, finds what was buffered and then the close frame.
    received = 0
    with pytest.raises(websockets.ConnectionClosed) as info:
        while True:
            await asyncio.wait_for(slow.recv(), 10)
            received += 1
    assert info.value.rcvd is not None and info.value.rcvd.code == 1013
    assert received < sent + 25
    await fast.close()


async def test_subscriptions_survive_a_killed_pubsub_connection(
    endpoint: Endpoint, gql: GQL, tenant: Tenant, redis: Redis
) -> None:
    post_id, influencer_id = await a_post(gql, tenant)
    ws = await connected(endpoint.url, tenant.token)
    await subscribe(ws, "1", POST_ADDED)
    await wait_subscribed(redis, tenant)
    # Only this endpoint's pub/sub connection: other test runs share this Redis.
    clients = await redis.client_list(_type="pubsub")
    ours = [c["id"] for c in clients if c.get("name") == endpoint.hub_name]
    assert len(ours) == 1, clients
    await redis.execute_command("CLIENT", "KILL", "ID", ours[0])
    for _ in range(500):  # the hub reconnects and subscribes again
        clients = await redis.client_list(_type="pubsub")
        if [c for c in clients if c.get("name") == endpoint.hub_name and c["id"] != ours[0]]:
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("the hub did not reconnect")
    await wait_subscribed(redis, tenant)
    # the socket is told that events may have been missed meanwhile (core/hub.py)
    notice = await recv(ws)
    assert notice["type"] == "ping" and notice["payload"]["event"] == "events_missed", notice
    await publish(redis, tenant, post_id, influencer_id)
    message = await recv(ws)
    assert message["type"] == "next" and message["id"] == "1"
    assert message["payload"]["data"]["postAdded"]["externalId"] == "w0"
    await ws.close()


async def test_shutdown_closes_sockets_with_1001(endpoint: Endpoint, tenant: Tenant) -> None:
    ws = await connected(endpoint.url, tenant.token)
    await subscribe(ws, "1", POST_ADDED)
    await endpoint.ws.stop()
    assert await close_code(ws) == 1001
    assert endpoint.ws.active_subscriptions == 0
    with contextlib.suppress(Exception):
        await ws.close()


@pytest.mark.slow
async def test_trendscope_api_closes_sockets_with_1001_on_sigterm(services: Services) -> None:
    """`trendscope api` closes our sockets with 1001 before uvicorn's own shutdown (1012)."""
    import signal

    async with api_process(services) as api:
        ws = await open_ws(api.ws_url)
        await send(ws, {"type": "ping"})
        assert await recv(ws) == {"type": "pong"}
        api.proc.send_signal(signal.SIGTERM)
        assert await close_code(ws) == 1001
