"""Issue 12, item 3: a Redis restart. The real `trendscope api` process runs against a
throwaway redis-server that this test starts (never the machine's shared one), the server is
killed and started again on the same port, and live subscriptions, the one opened before the
restart, one opened while Redis was down and one opened after, receive the next event."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from api.embedded_redis import _redis_binary, _redis_ping
from tests.conftest import GQL, Services, Tenant, _free_port, api_process
from tests.graphql.test_ws_protocol import a_post, publish
from tests.wsclient import POST_ADDED, connected, recv, send, subscribe, wait_subscribed

pytestmark = pytest.mark.slow  # process-level: `pytest -m "not slow"` leaves it out


class ThrowawayRedis:
    """A redis-server of this test's own, on a port of its own, without persistence."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="ts-redis-restart-"))
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            _redis_binary(),
            *("--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir)),
            *("--save", "", "--appendonly", "no"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for _ in range(500):
            if await asyncio.to_thread(_redis_ping, self.port):
                return
            assert self.proc.returncode is None, "redis-server exited"
            await asyncio.sleep(0.02)
        raise AssertionError("redis-server did not start")

    async def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await asyncio.wait_for(self.proc.wait(), 10)
        self.proc = None

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await asyncio.wait_for(self.proc.wait(), 10)


@pytest.fixture
async def throwaway_redis() -> AsyncIterator[ThrowawayRedis]:
    server = ThrowawayRedis()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def outage() -> None:
    """Keep Redis down long enough for the hub to fail several reconnect attempts (its first
    retry comes after 0.1 s): a restart quicker than that hides a hub that gives up."""
    await asyncio.sleep(1.5)


async def next_event(ws: object, id_: str) -> dict[str, object]:
    """The next `next` frame, skipping the server's `ping` notices (answered as the
    protocol asks)."""
    while True:
        message = await recv(ws)  # type: ignore[arg-type]
        if message["type"] == "ping":
            await send(ws, {"type": "pong"})  # type: ignore[arg-type]
            continue
        assert message["type"] == "next" and message["id"] == id_, message
        return message


async def test_subscriptions_receive_again_after_redis_restarts(
    services: Services, gql: GQL, tenant: Tenant, throwaway_redis: ThrowawayRedis
) -> None:
    post_id, influencer_id = await a_post(gql, tenant)  # stored through the session's app
    async with api_process(services, REDIS_URL=throwaway_redis.url) as api:
        ws_url = api.ws_url
        before = await connected(ws_url, tenant.token)
        await subscribe(before, "1", POST_ADDED)
        redis = Redis.from_url(throwaway_redis.url)
        try:
            await wait_subscribed(redis, tenant)
            await publish(redis, tenant, post_id, influencer_id)
            await next_event(before, "1")
        finally:
            await redis.aclose()

        await throwaway_redis.kill()
        # Redis is gone: a new socket still connects (tokens are checked without it) and
        # subscribes; nothing can be delivered yet.
        during = await connected(ws_url, tenant.token)
        await subscribe(during, "2", POST_ADDED)
        await outage()
        await throwaway_redis.start()  # the same port, empty (no persistence)

        redis = Redis.from_url(throwaway_redis.url)
        try:
            await wait_subscribed(redis, tenant)  # the hub came back by itself
            after = await connected(ws_url, tenant.token)
            await subscribe(after, "3", POST_ADDED)
            await publish(redis, tenant, post_id, influencer_id)
            for ws, id_ in ((before, "1"), (during, "2"), (after, "3")):
                message = await next_event(ws, id_)
                assert message["payload"]["data"]["postAdded"]["externalId"] == "w0"  # type: ignore[index]
        finally:
            await redis.aclose()
        for ws in (before, during, after):
            await ws.close()


async def test_a_socket_is_told_when_events_were_missed(
    services: Services, gql: GQL, tenant: Tenant, throwaway_redis: ThrowawayRedis
) -> None:
    """Never silent: after the hub resubscribes, every socket with a subscription gets a
    protocol `ping` saying that events published meanwhile were lost."""
    async with api_process(services, REDIS_URL=throwaway_redis.url) as api:
        ws_url = api.ws_url
        ws = await connected(ws_url, tenant.token)
        await subscribe(ws, "1", POST_ADDED)
        await throwaway_redis.kill()
        await outage()
        await throwaway_redis.start()
        notice = await recv(ws, wait=30)
        assert notice["type"] == "ping", notice
        payload = notice["payload"]
        assert payload["event"] == "events_missed" and payload["from"] <= payload["until"]
        await send(ws, {"type": "pong"})
        await send(ws, {"type": "ping"})
        assert await recv(ws) == {"type": "pong"}  # the socket serves on
        await ws.close()
