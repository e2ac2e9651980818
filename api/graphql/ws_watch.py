"""Watching open websockets from outside their own messages (api/graphql/ws.py): credential
revocations, heard on Redis pub/sub and checked periodically, close a user's sockets with
4403; after the event hub got its Redis connection back, sockets with subscriptions are told
that events may have been missed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import structlog

from core.hub import EventHub, SubscriberTooSlow
from core.settings import Settings
from domain.accounts.service import Principal
from domain.accounts.sessions import parse_revocation, revocation_channel, sessions

log = structlog.get_logger(__name__)

FORBIDDEN = 4403


class Socket(Protocol):
    principal: Principal | None

    def close(self, code: int, reason: str = "") -> None: ...

    def post(self, item: Any) -> None: ...


class SocketWatch:
    def __init__(
        self,
        settings: Settings,
        sockets: Callable[[], Iterable[Socket]],
        has_subscriptions: Callable[[Any], bool],
    ) -> None:
        self.settings = settings
        self._sockets = sockets
        self._has_subscriptions = has_subscriptions
        self._tasks: list[asyncio.Task[None]] = []
        self.revoked = 0  # sockets closed 4403 because their credential was revoked

    def start(self, hub: EventHub) -> None:
        hub.on_resubscribed(self.resubscribed)
        self._tasks = [
            asyncio.create_task(self._hear_revocations(hub), name="ws-revocations"),
            asyncio.create_task(self._check_sessions(), name="ws-session-check"),
        ]

    def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._tasks = []

    async def _hear_revocations(self, hub: EventHub) -> None:
        """Revocations announced by any process (domain/accounts/sessions.py): the user's
        sockets holding an older token close with 4403 at once."""
        channel = revocation_channel(self.settings)
        while True:
            try:
                async with hub.subscribe(channel) as messages:
                    async for message in messages:
                        heard = parse_revocation(message)
                        if heard is not None:
                            sessions.heard(*heard)
                            self.close_revoked({heard[0]: heard[1]})
            except asyncio.CancelledError:
                raise
            except SubscriberTooSlow:
                continue
            except Exception:
                log.exception("revocation_listener_failed")
                await asyncio.sleep(1)

    async def _check_sessions(self) -> None:
        """Every `session_check_seconds`, the open sockets' users' versions (cached, one MGET
        for the rest): a revocation whose message was lost (Redis restarting) still closes
        the sockets, within that bound."""
        while True:
            await asyncio.sleep(self.settings.session_check_seconds)
            users = {
                s.principal.user_id
                for s in self._sockets()
                if s.principal is not None
                and s.principal.user_id is not None
                and s.principal.session_version is not None
            }
            if not users:
                continue
            try:
                versions = await sessions.current_many(self.settings, users)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("session_check_failed")
                continue
            self.close_revoked(versions)

    def close_revoked(self, versions: dict[int, int]) -> None:
        for sock in self._sockets():
            p = sock.principal
            if p is None or p.user_id not in versions or p.session_version is None:
                continue
            if p.session_version < versions[p.user_id]:
                self.revoked += 1
                sock.close(FORBIDDEN, "Forbidden: access token revoked")

    def resubscribed(self, lost_at: float, back_at: float) -> None:
        """The hub's Redis connection is back: tell every socket with subscriptions that
        events published meanwhile were lost, with a protocol `ping` (graphql-ws clients
        answer it, and see its payload in their `ping` listener)."""
        frame = json.dumps(
            {
                "type": "ping",
                "payload": {
                    "event": "events_missed",
                    "reason": "the server's event stream was interrupted",
                    "from": round(lost_at, 3),
                    "until": round(back_at, 3),
                },
            },
            separators=(",", ":"),
        )
        for sock in self._sockets():
            if self._has_subscriptions(sock):
                sock.post(frame)
