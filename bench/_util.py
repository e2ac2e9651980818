"""Shared benchmark plumbing: a throw-away database, server subprocesses, an HTTP load loop.

Nothing here knows about Trendscope's schema; `bench/influencers_query.py` uses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

import asyncpg
import httpx
import psutil

T = TypeVar("T")

REPO_ROOT = Path(__file__).resolve().parents[1]


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run`, on uvloop when it is installed (it is, with uvicorn[standard])."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


# --- the throw-away database ------------------------------------------------------------------


def database_url(server_url: str, name: str) -> str:
    """`server_url` with its database (the path) replaced by `name`."""
    return urlparse(server_url)._replace(path=f"/{name}").geturl()


@contextlib.contextmanager
def temporary_database(server_url: str, prefix: str = "bench") -> Iterator[str]:
    """Create `<prefix>_<random>` on the server, yield its URL, drop it afterwards (always)."""
    name = f"{prefix}_{secrets.token_hex(4)}"

    async def execute(sql: str) -> None:
        conn = await asyncpg.connect(server_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(execute(f'CREATE DATABASE "{name}"'))
    try:
        yield database_url(server_url, name)
    finally:
        # FORCE (PostgreSQL 13+) ends any connection a killed server may have left behind.
        asyncio.run(execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# --- server subprocesses ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A server subprocess in its own session (Ctrl-C in the terminal does not reach it; we
    stop it), its output in a log file."""

    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_ready(self, path: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            try:
                if httpx.get(self.url + path, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout} s:\n{self.log_tail()}")

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def start_server(
    name: str, args: list[str], *, port: int, env: dict[str, str], log_dir: Path
) -> Server:
    """Start `python <args>` (from the repository root) as a server listening on `port`."""
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, *args],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Server(name=name, port=port, proc=proc, log_path=log_path)


@contextlib.contextmanager
def sigterm_as_keyboard_interrupt() -> Iterator[None]:
    """So that `kill <bench pid>` runs the same clean-up as Ctrl-C."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# --- load -------------------------------------------------------------------------------------


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), round(q / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def _schedstat_seconds(pid: int) -> float:
    """CPU time of all of `pid`'s threads, from /proc/<pid>/task/*/schedstat (Linux; in
    nanoseconds rather than the clock ticks of /proc/<pid>/stat)."""
    total = 0
    for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            total += int(stat.read_text().split()[0])
    return total / 1e9


def cpu_seconds(pid: int) -> float:
    """CPU time of a process so far (0 once it is gone)."""
    if Path("/proc/self/task").is_dir():
        return _schedstat_seconds(pid)
    with contextlib.suppress(psutil.Error):  # not Linux: user + system, as the OS samples them
        t = psutil.Process(pid).cpu_times()
        return t.user + t.system
    return 0.0


class CpuMeter:
    """CPU used by a changing set of processes between `start()` and `stop()`: a process
    that appears in between (a new pooled database connection) counts from its start."""

    def __init__(self, pids: Callable[[], list[int]]) -> None:
        self._pids = pids
        self._before: dict[int, float] = {}

    def start(self) -> None:
        self._before = {pid: cpu_seconds(pid) for pid in self._pids()}

    def stop(self) -> float:
        pids = set(self._before) | set(self._pids())
        return sum(max(0.0, cpu_seconds(pid) - self._before.get(pid, 0.0)) for pid in pids)


@dataclass
class LoadResult:
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0  # every response of warm-up and measurement that failed `check`
    error_samples: list[str] = field(default_factory=list)
    client_cpu_s: float = 0.0  # this (load generator) process, during the measured window
    server_cpu_s: float = 0.0  # the server process(es)
    database_cpu_s: float = 0.0  # the PostgreSQL backends serving the server

    @property
    def requests(self) -> int:
        return len(self.latencies_ms)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def p(self, q: float) -> float:
        return percentile(sorted(self.latencies_ms), q)

    def per_request_ms(self, cpu_s: float) -> float:
        return 1000 * cpu_s / self.requests if self.requests else 0.0


async def run_load(
    url: str,
    *,
    body: bytes,
    headers: dict[str, str],
    check: Callable[[httpx.Response], str | None],
    concurrency: int,
    seconds: float,
    warmup: float,
    server_pids: list[int],
    database_pids: Callable[[], list[int]] = list,
) -> LoadResult:
    """POST `body` to `url` from `concurrency` tasks over keep-alive connections: `warmup`
    seconds unrecorded, then `seconds` recorded. `check` returns None for a good response or
    a description of what is wrong with it."""
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    loop = asyncio.get_running_loop()
    measure_from = loop.time() + warmup
    measure_until = measure_from + seconds
    result = LoadResult(seconds=seconds)

    async def worker(client: httpx.AsyncClient) -> None:
        # Like wrk: a request counts when it completes inside the window; none starts after.
        while loop.time() < measure_until:
            t0 = time.perf_counter()  # uvloop's loop.time() only has millisecond resolution
            problem: str | None
            try:
                response = await client.post(url, content=body, headers=headers)
                problem = check(response)
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            t1 = time.perf_counter()
            done = loop.time()
            if problem is not None:
                result.errors += 1
                if len(result.error_samples) < 5:
                    result.error_samples.append(problem)
                await asyncio.sleep(0.01)  # a dead server must not turn this into a busy loop
            elif measure_from <= done < measure_until:
                result.latencies_ms.append((t1 - t0) * 1000)

    async def meter() -> tuple[float, float, float]:
        server = CpuMeter(lambda: server_pids)
        database = CpuMeter(database_pids)
        await asyncio.sleep(measure_from - loop.time())
        client_before = time.process_time()
        server.start()
        database.start()
        await asyncio.sleep(measure_until - loop.time())
        client = time.process_time() - client_before
        return client, server.stop(), database.stop()

    async with contextlib.AsyncExitStack() as stack:
        # One client (one keep-alive connection) per task: a single client shared by many
        # tasks spends most of its CPU in its connection pool's bookkeeping
        # (encode/httpx#3215), which would make the load generator the bottleneck.
        clients = [
            await stack.enter_async_context(httpx.AsyncClient(limits=limits, timeout=30.0))
            for _ in range(concurrency)
        ]
        metering = asyncio.create_task(meter())
        await asyncio.gather(*(worker(client) for client in clients))
        result.client_cpu_s, result.server_cpu_s, result.database_cpu_s = await metering
    return result


# --- open-loop load: a constant arrival rate --------------------------------------------------


@dataclass
class RateResult:
    """Latencies of a fixed-rate run, measured from each request's scheduled send time (so
    queueing behind a slow server counts: no coordinated omission)."""

    rate: float
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    late_starts: int = 0  # sends that left more than 10 ms after their scheduled time
    connections: int = 0  # keep-alive connections the generator needed

    @property
    def requests(self) -> int:
        return len(self.latencies_ms)

    @property
    def achieved_rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def p(self, q: float) -> float:
        return percentile(sorted(self.latencies_ms), q)


async def run_fixed_rate(
    url: str,
    *,
    requests: Callable[[int], tuple[bytes, dict[str, str]]],
    check: Callable[[httpx.Response], str | None],
    rate: float,
    seconds: float,
    warmup: float,
    max_connections: int = 512,
) -> RateResult:
    """Open-loop load (like wrk2): request i is sent at start + i / rate whether or not the
    earlier ones have been answered, on an idle keep-alive connection (a new one when none
    is idle, up to `max_connections`). `requests(i)` gives request i's body and headers.
    Requests scheduled during the first `warmup` seconds are not recorded."""
    result = RateResult(rate=rate, seconds=seconds)
    idle: list[httpx.AsyncClient] = []
    opened: list[httpx.AsyncClient] = []
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    total = int((warmup + seconds) * rate)
    measured_from = int(warmup * rate)
    gate = asyncio.Semaphore(max_connections)
    # One TLS context for every client: httpx builds one per client otherwise (~50 ms of CPU
    # each, which would stall the schedule whenever a new connection is needed).
    tls = ssl.create_default_context()

    def new_client() -> httpx.AsyncClient:
        client = httpx.AsyncClient(limits=limits, timeout=30.0, verify=tls)
        opened.append(client)
        return client

    idle.extend(new_client() for _ in range(min(max_connections, max(8, int(rate / 5)))))

    async def one(i: int, scheduled: float) -> None:
        async with gate:
            client = idle.pop() if idle else new_client()
            if time.perf_counter() - scheduled > 0.010 and i >= measured_from:
                result.late_starts += 1
            body, headers = requests(i)
            problem: str | None
            try:
                response = await client.post(url, content=body, headers=headers)
                problem = check(response)
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            done = time.perf_counter()
            idle.append(client)
        if problem is not None:
            result.errors += 1
            if len(result.error_samples) < 5:
                result.error_samples.append(problem)
        elif i >= measured_from:
            result.latencies_ms.append((done - scheduled) * 1000)

    # perf_counter, not loop.time(): uvloop's clock only has millisecond resolution.
    start = time.perf_counter() + 0.05
    tasks = []
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, scheduled)))
    await asyncio.gather(*tasks)
    result.connections = len(opened)
    for client in opened:
        await client.aclose()
    return result


# What production refuses to start without (core/settings.py `insecure_settings`), for the
# benchmarks that run the app in production mode. Stand-in values: nothing here is served
# to anyone outside the machine. The seeding in this process signs its tokens with the same
# SECRET_KEY the servers get, so a random one is set for the whole run (unless given).
os.environ.setdefault("SECRET_KEY", secrets.token_hex(32))
PRODUCTION_ENV = {
    "ENV": "production",
    "CREDENTIAL_KEYS": "ZmDfcTF7_60GrrY167zsiPd67pEvs0aGOv2oasOM1Pg=",
    "PUBLIC_URL": "https://api.bench.invalid",
    "APP_URL": "https://app.bench.invalid",
}
