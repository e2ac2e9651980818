"""Supervision for `trendscope up`: keep the API, the workers, the demo replay and the embedded
PostgreSQL/Redis running, and take them all down with `up`.

- A child that exits is restarted after an exponential back-off (1 s, 2 s, 4 s ... capped at
  ``BACKOFF_CAP``); a child that ran ``STABLE_AFTER`` seconds before it died starts again from
  1 s, so a crash loop is slowed down but a rare crash is healed at once. Each restart is
  logged: "restarting worker in 2 s (exit code -9)".
- An embedded server that dies is started again on the same port and data directory (the
  children's DATABASE_URL/REDIS_URL stay valid, the data survives: PGDATA, Redis' AOF).
- Every child gets a parent-death signal (``die_with_parent`` in api/embedded_procs.py): when
  `up` dies, even by SIGKILL, they stop instead of holding the ports.
- SIGINT, SIGTERM and SIGHUP stop everything. The SIGINT handler is set explicitly: Python
  leaves SIGINT ignored when it was inherited as ignored (``nohup``, some CI runners, a
  shell's background job), and then Ctrl-C would do nothing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType

from api.embedded import EmbeddedServices
from api.embedded_procs import die_with_parent

log = logging.getLogger("trendscope.up")

BACKOFF_FIRST = 1.0  # seconds before the first restart
BACKOFF_CAP = 30.0  # the longest wait between restarts of a crash-looping process
STABLE_AFTER = 60.0  # a process that ran this long before it died is not crash-looping
STOP_TIMEOUT = 15.0  # SIGTERM -> SIGKILL on stop
POLL_INTERVAL = 0.5


class Stop(Exception):
    """Raised in the main thread by the signal handlers: stop everything."""


@dataclass
class _Unit:
    """A supervised thing: a child process or an embedded server, and its back-off state."""

    name: str
    failures: int = 0  # consecutive quick deaths
    started_at: float = field(default_factory=time.monotonic)
    restart_at: float | None = None  # set while waiting to restart

    def scheduled(self, exit_code: int | None, now: float) -> float:
        """Record a death; return the delay before the restart."""
        if now - self.started_at >= STABLE_AFTER:
            self.failures = 0
        delay = min(BACKOFF_CAP, BACKOFF_FIRST * 2**self.failures)
        self.failures += 1
        self.restart_at = now + delay
        code = "unknown" if exit_code is None else exit_code
        log.warning("restarting %s in %g s (exit code %s)", self.name, delay, code)
        return delay


@dataclass
class _Child(_Unit):
    argv: list[str] = field(default_factory=list)
    popen: subprocess.Popen[bytes] | None = None


class Supervisor:
    """Runs `up`'s children under ``env`` with the embedded servers in ``embedded``."""

    def __init__(self, env: dict[str, str], embedded: EmbeddedServices) -> None:
        self.env = env
        self.embedded = embedded
        self.children: list[_Child] = []
        self.servers = {name: _Unit(name) for name in embedded.server_names()}
        self.stopping = False
        # Children get SIGTERM when `up` dies: each one's own graceful shutdown (uvicorn drains,
        # ARQ and Dramatiq finish or requeue their jobs).
        self._preexec: Callable[[], None] | None = die_with_parent(signal.SIGTERM)

    # ------------------------------------------------------------------ signals

    def install_signal_handlers(self) -> None:
        def on_signal(signum: int, _frame: FrameType | None) -> None:
            if not self.stopping:
                raise Stop(signal.Signals(signum).name)

        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, on_signal)

    # ------------------------------------------------------------------ children

    def run_step(self, *args: str) -> None:
        """A one-off command (migrate, seed-demo) that must succeed before the children."""
        subprocess.run(self._cmd(args), env=self.env, check=True, preexec_fn=self._preexec)

    def spawn(self, name: str, *args: str) -> _Child:
        child = _Child(name, argv=self._cmd(args))
        self._start(child)
        self.children.append(child)
        return child

    def _cmd(self, args: tuple[str, ...]) -> list[str]:
        return [sys.executable, "-m", "api.cli", *args]

    def _start(self, child: _Child) -> None:
        child.popen = subprocess.Popen(
            child.argv,
            env=self.env,
            start_new_session=True,  # a terminal's Ctrl-C reaches `up` only; it stops them
            preexec_fn=self._preexec,
        )
        child.started_at = time.monotonic()
        child.restart_at = None

    # ------------------------------------------------------------------ the loop

    def check(self) -> None:
        """One round: notice deaths, restart what is due. The embedded servers come first:
        the children need them."""
        now = time.monotonic()
        for name, code in self.embedded.dead().items():
            unit = self.servers[name]
            if unit.restart_at is None:
                unit.scheduled(code, now)
        for unit in self.servers.values():
            if unit.restart_at is not None and unit.restart_at <= time.monotonic():
                try:
                    self.embedded.restart(unit.name)
                except Exception as exc:  # e.g. its port got taken: try again later, stay up
                    log.error("embedded %s did not restart: %s", unit.name, exc)
                    unit.started_at = time.monotonic()
                    unit.scheduled(None, time.monotonic())
                else:
                    unit.started_at, unit.restart_at = time.monotonic(), None
                    log.warning("embedded %s is running again", unit.name)
        for child in self.children:
            assert child.popen is not None
            if child.restart_at is None and child.popen.poll() is not None:
                # What it started dies with it: a Dramatiq main process killed hard leaves its
                # worker processes (same process group) consuming next to the new ones.
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(child.popen.pid, signal.SIGKILL)
                child.scheduled(child.popen.returncode, time.monotonic())
            if child.restart_at is not None and child.restart_at <= time.monotonic():
                self._start(child)

    def run_forever(self) -> None:
        while True:
            self.check()
            time.sleep(POLL_INTERVAL)

    # ------------------------------------------------------------------ stop

    def stop(self) -> None:
        """Stop the children, then the embedded servers (idempotent)."""
        if self.stopping:
            return
        self.stopping = True
        # A second Ctrl-C or a SIGTERM must not interrupt the clean-up half way.
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        log.warning("stopping...")
        running = [c.popen for c in self.children if c.popen is not None]
        # TERM goes to each child only: the Dramatiq main process forwards it to its worker
        # processes, and a worker that gets a second TERM exits half way and hangs.
        for popen in running:
            if popen.poll() is None:
                popen.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT
        for popen in running:
            try:
                popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait()
            with contextlib.suppress(ProcessLookupError):  # anything its group left behind
                os.killpg(popen.pid, signal.SIGKILL)
        self.embedded.stop()
