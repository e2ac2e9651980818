"""Graceful shutdown of an api process.

uvicorn owns the shutdown itself: on SIGTERM/SIGINT it stops accepting connections, lets
in-flight HTTP requests finish (at most `timeout_graceful_shutdown`, set by `trendscope api
--graceful-timeout`), then runs our lifespan's shutdown (event hub, Redis, database pool, in
that order). Closing websockets with 1001 ("going away") belongs to the websocket handler
(`api/graphql/ws.py`).

What this module adds: from the first SIGTERM/SIGINT, `/readyz` answers 503 so that a load
balancer with health checks takes the replica out of rotation; with a shutdown delay
(`SHUTDOWN_DELAY_SECONDS` / `--shutdown-delay`) the process keeps serving for that long
before it hands the signal to uvicorn, which is what makes rolling restarts lossless behind a
balancer that only learns about the replica through `/readyz`. A second signal during the
delay shuts down at once.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

import structlog

log = structlog.get_logger(__name__)

_SIGNALS = (signal.SIGTERM, signal.SIGINT)

Handler = Callable[[int, FrameType | None], Any]


class Lifecycle:
    def __init__(self, shutdown_delay: float = 0.0) -> None:
        self.shutdown_delay = shutdown_delay
        self.shutting_down = False
        self._previous: dict[int, Handler] = {}
        self._installed: dict[int, Handler] = {}
        self._timer: asyncio.TimerHandle | None = None

    def begin_shutdown(self) -> None:
        if not self.shutting_down:
            self.shutting_down = True
            log.info("shutdown_started", delay_seconds=self.shutdown_delay)

    def install_signal_handlers(self, loop: asyncio.AbstractEventLoop) -> None:
        """Chain our handler in front of the server's (uvicorn installs a Python handler in
        the main thread before the lifespan starts). No-op elsewhere (another thread, or no
        Python handler to chain)."""
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in _SIGNALS:
            previous = signal.getsignal(sig)
            if not callable(previous):
                continue

            def handler(signum: int, frame: FrameType | None, previous: Handler = previous) -> None:
                # Runs between two bytecodes of the loop's thread: only thread-safe calls here.
                loop.call_soon_threadsafe(self._on_signal, signum, previous)

            self._previous[sig] = previous
            self._installed[sig] = handler
            signal.signal(sig, handler)

    def _on_signal(self, signum: int, previous: Handler) -> None:
        first = not self.shutting_down
        self.begin_shutdown()
        if first and self.shutdown_delay > 0:
            self._timer = asyncio.get_running_loop().call_later(
                self.shutdown_delay, previous, signum, None
            )
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        previous(signum, None)

    def restore_signal_handlers(self) -> None:
        for sig, handler in self._installed.items():
            if signal.getsignal(sig) is handler:
                signal.signal(sig, self._previous[sig])
        self._installed.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
