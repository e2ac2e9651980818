"""One Redis pub/sub connection per process, fanned out in-process to subscribers.

Each subscriber gets a bounded queue. A subscriber whose queue is full (a slow consumer) is
dropped: its iterator raises `SubscriberTooSlow`, so memory never grows without bound. Channels
are subscribed in Redis while at least one local subscriber wants them, and subscribed again
after the Redis connection comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = structlog.get_logger(__name__)

# Subscription field metadata (`metadata={REPLAY_LATEST: True}`): the field streams a state,
# not events, so a subscriber joining a running multiplexed group (api/ws.py) is sent the
# group's latest result at once.
REPLAY_LATEST = "replay_latest"


class SubscriberTooSlow(Exception):
    pass


class _Subscriber:
    __slots__ = ("dropped", "queue")

    def __init__(self, size: int) -> None:
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=size)
        self.dropped = False


class EventHub:
    def __init__(self, redis: Redis, *, queue_size: int = 256) -> None:
        self._redis = redis
        self._queue_size = queue_size
        self._subs: dict[str, set[_Subscriber]] = defaultdict(set)
        self._pubsub = redis.pubsub(ignore_subscribe_messages=True)
        self._reader: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._connected = asyncio.Event()

    @property
    def subscriber_count(self) -> int:
        return sum(len(s) for s in self._subs.values())

    async def start(self) -> None:
        self._reader = asyncio.create_task(self._read_forever(), name="event-hub-reader")

    async def stop(self) -> None:
        if self._reader:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        with contextlib.suppress(Exception):
            await self._pubsub.aclose()

    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        sub = _Subscriber(self._queue_size)
        async with self._lock:
            first = not self._subs[channel]
            self._subs[channel].add(sub)
            if first:
                await self._pubsub.subscribe(channel)
                self._connected.set()
        try:
            yield self._iterate(sub)
        finally:
            async with self._lock:
                self._subs[channel].discard(sub)
                if not self._subs[channel]:
                    del self._subs[channel]
                    with contextlib.suppress(Exception):
                        await self._pubsub.unsubscribe(channel)

    async def _iterate(self, sub: _Subscriber) -> AsyncIterator[dict[str, Any]]:
        while True:
            if sub.dropped:
                raise SubscriberTooSlow("subscriber could not keep up and was dropped")
            yield await sub.queue.get()

    def _dispatch(self, channel: str, data: str | bytes) -> None:
        try:
            payload = json.loads(data)
        except (TypeError, ValueError):
            log.warning("bad_event_payload", channel=channel)
            return
        for sub in list(self._subs.get(channel, ())):
            if sub.dropped:
                continue
            try:
                sub.queue.put_nowait(payload)
            except asyncio.QueueFull:
                sub.dropped = True
                log.warning("slow_subscriber_dropped", channel=channel)

    async def _read_forever(self) -> None:
        backoff = 0.1
        while True:
            try:
                await self._connected.wait()
                msg = await self._pubsub.get_message(timeout=1.0)
                backoff = 0.1
                if msg and msg.get("type") == "message":
                    channel = msg["channel"]
                    if isinstance(channel, bytes):
                        channel = channel.decode()
                    self._dispatch(channel, msg["data"])
            except asyncio.CancelledError:
                raise
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                log.warning("pubsub_disconnected", error=str(exc), retry_in=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                await self._resubscribe()
            except RuntimeError:
                # get_message before any subscribe on a fresh connection
                await asyncio.sleep(0.05)

    async def _resubscribe(self) -> None:
        async with self._lock:
            channels = list(self._subs)
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
            self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            if channels:
                try:
                    await self._pubsub.subscribe(*channels)
                    log.info("pubsub_resubscribed", channels=len(channels))
                except (RedisConnectionError, RedisTimeoutError, OSError):
                    pass  # the reader loop will try again
