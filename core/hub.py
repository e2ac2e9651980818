"""One Redis pub/sub connection per process, fanned out in-process to subscribers.

Each subscriber gets a bounded queue. A subscriber whose queue is full (a slow consumer) is
dropped: its iterator raises `SubscriberTooSlow`, so memory never grows without bound. Channels
are subscribed in Redis while at least one local subscriber wants them.

Redis going away (a restart, a killed connection, a failover): the reader task owns the
pub/sub connection. When it breaks, the reader drops it and connects again with exponential
back-off (0.1 s doubling to `max_backoff`, with jitter so that many api processes do not
reconnect in step), subscribing every channel wanted *at that moment* in one command, so
subscriptions opened during the outage are included. Local subscribers are kept meanwhile: a
subscription never notices, except that what was published while the connection was down is
lost (Redis pub/sub keeps no history). So that this is never silent, `on_resubscribed`
callbacks are told when the connection is back and since when it was down (api/graphql/ws.py sends
every socket with subscriptions a `ping` saying so). `connected` and `reconnects` are exposed
for health checks and metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

log = structlog.get_logger(__name__)

# Subscription field metadata (`metadata={REPLAY_LATEST: True}`): the field streams a state,
# not events, so a subscriber joining a running multiplexed group (api/graphql/ws.py) is sent the
# group's latest result at once.
REPLAY_LATEST = "replay_latest"

# What a broken or unreachable Redis raises (redis-py wraps most socket errors, not all).
_LOST = (RedisError, OSError, TimeoutError)

# (seconds since the epoch when the connection was lost, when it was back)
ResubscribedCallback = Callable[[float, float], None]


def channel(tenant_schema: str, event: str) -> str:
    """A tenant's channel of one domain event: the outbox publishes on it (tenants/outbox.py),
    subscriptions subscribe to it. Namespaced by tenant so that no tenant hears another's."""
    return f"t:{tenant_schema}:{event}"


class SubscriberTooSlow(Exception):
    pass


class _Subscriber:
    __slots__ = ("dropped", "queue")

    def __init__(self, size: int) -> None:
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=size)
        self.dropped = False


class EventHub:
    def __init__(
        self,
        redis: Redis,
        *,
        queue_size: int = 256,
        max_backoff: float = 5.0,
        command_timeout: float = 10.0,
    ) -> None:
        self._redis = redis
        self._queue_size = queue_size
        self._max_backoff = max_backoff
        self._command_timeout = command_timeout  # a (re)subscribe that hangs counts as lost
        self._subs: dict[str, set[_Subscriber]] = defaultdict(set)
        self._pubsub: PubSub | None = None  # the live connection; None while reconnecting
        self._reader: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()  # (re)subscribing and the channel set change together
        self._wanted = asyncio.Event()  # set while some channel is wanted
        self._broken = False  # a subscriber's command failed: the reader reconnects
        self._on_resubscribed: list[ResubscribedCallback] = []
        self.connected = False
        self.reconnects = 0

    @property
    def subscriber_count(self) -> int:
        return sum(len(s) for s in self._subs.values())

    def subscribers(self, channel: str) -> int:
        """Subscribers of one channel in this process (tests wait on it instead of sleeping)."""
        return len(self._subs.get(channel, ()))

    def on_resubscribed(self, callback: ResubscribedCallback) -> None:
        self._on_resubscribed.append(callback)

    async def start(self) -> None:
        self._reader = asyncio.create_task(self._read_forever(), name="event-hub-reader")

    async def stop(self) -> None:
        if self._reader:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        await self._drop_connection()

    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        sub = _Subscriber(self._queue_size)
        async with self._lock:
            first = not self._subs[channel]
            self._subs[channel].add(sub)
            self._wanted.set()
            if first and self._pubsub is not None:
                try:
                    await asyncio.wait_for(self._pubsub.subscribe(channel), self._command_timeout)
                except _LOST as exc:
                    # The reader sees the same broken connection (or is told so) and
                    # subscribes every wanted channel, this one included, once Redis is back.
                    log.warning("pubsub_subscribe_failed", error=str(exc))
                    self._broken = True
        try:
            yield self._iterate(sub)
        finally:
            async with self._lock:
                self._subs[channel].discard(sub)
                if not self._subs[channel]:
                    del self._subs[channel]
                    if self._pubsub is not None:
                        with contextlib.suppress(*_LOST):
                            await asyncio.wait_for(
                                self._pubsub.unsubscribe(channel), self._command_timeout
                            )

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

    async def _connect(self) -> PubSub | None:
        """A new pub/sub connection subscribed to every wanted channel; None when nothing is
        wanted (then no connection is held)."""
        async with self._lock:
            channels = list(self._subs)
            if not channels:
                self._wanted.clear()
                return None
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await asyncio.wait_for(pubsub.subscribe(*channels), self._command_timeout)
            except BaseException:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                raise
            self._pubsub = pubsub
            self._broken = False
            self.connected = True
            return pubsub

    async def _drop_connection(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        self.connected = False
        if pubsub is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pubsub.aclose(), 1.0)

    async def _read_forever(self) -> None:
        backoff = 0.1
        lost_at: float | None = None  # wall time the connection was lost, while it is
        while True:
            await self._wanted.wait()
            try:
                pubsub = await self._connect()
                if pubsub is None:
                    continue
                backoff = 0.1
                if lost_at is not None:
                    back_at = time.time()
                    self.reconnects += 1
                    log.info("pubsub_resubscribed", channels=len(self._subs), down_since=lost_at)
                    for callback in list(self._on_resubscribed):
                        try:
                            callback(lost_at, back_at)
                        except Exception:
                            log.exception("pubsub_resubscribed_callback_failed")
                    lost_at = None
                while not self._broken:
                    msg = await pubsub.get_message(timeout=1.0)
                    if msg and msg.get("type") == "message":
                        channel = msg["channel"]
                        if isinstance(channel, bytes):
                            channel = channel.decode()
                        self._dispatch(channel, msg["data"])
                raise RedisError("a subscribe on this connection failed")
            except asyncio.CancelledError:
                raise
            except (*_LOST, RuntimeError) as exc:
                # RuntimeError: redis-py's "pubsub connection not set" on a half-made one
                if lost_at is None:
                    lost_at = time.time()
                await self._drop_connection()
                delay = backoff * random.uniform(0.5, 1.0)
                log.warning("pubsub_disconnected", error=str(exc), retry_in=round(delay, 2))
                await asyncio.sleep(delay)
                backoff = min(backoff * 2, self._max_backoff)
