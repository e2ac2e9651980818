"""`trendscope up` supervises (api/supervisor.py), tried on the real processes: a killed API or
worker is restarted and says so, a killed embedded Redis or PostgreSQL comes back on its port
with its data, SIGINT stops everything even when it was inherited as ignored, and a SIGKILLed
`up` leaves no process behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from api.supervisor import STABLE_AFTER, _Unit
from tests.conftest import _free_port
from tests.ops.test_up import _ours

pytestmark = pytest.mark.slow  # process-level: `pytest -m "not slow"` leaves it out

QUERY = {"query": "{ influencers(first: 1) { edges { node { id } } } }"}


class Up:
    def __init__(self, data_dir: Path, *, ignore_sigint: bool = False, replay: bool = False):
        self.data_dir = data_dir
        self.port = _free_port()
        self.log = data_dir.parent / "up.log"
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        env["ENV"] = "development"
        args = ["up", "--port", str(self.port), "--data-dir", str(data_dir)]
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "api.cli", *args, *([] if replay else ["--no-replay"])],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                # how `nohup` or a CI runner starts it: SIGINT ignored before Python starts
                preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
                if ignore_sigint
                else None,
            )
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=5)
        wait_for(lambda: self.get("/healthz") == 200, 120, "/healthz 200", self)
        token = (data_dir / "demo-token").read_text().strip()
        self.auth = {"Authorization": f"Bearer {token}"}

    def get(self, path: str) -> int | None:
        try:
            return self.http.get(path).status_code
        except httpx.HTTPError:
            return None

    def query_ok(self) -> bool:
        try:
            body = self.http.post("/graphql", json=QUERY, headers=self.auth).json()
        except (httpx.HTTPError, ValueError):
            return False
        return "errors" not in body and len(body["data"]["influencers"]["edges"]) == 1

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def child(self, command: str) -> psutil.Process:
        """The live child running `python -m api.cli <command>` (analytics-worker: Dramatiq's
        main process, which runs Dramatiq's CLI in-process and forks its workers)."""
        wanted = ["api.cli", command]
        for proc in psutil.Process(self.proc.pid).children():
            if proc.cmdline()[2:4] == wanted and proc.status() != psutil.STATUS_ZOMBIE:
                return proc
        raise LookupError(command)

    def child_pid(self, command: str) -> int | None:
        try:
            return self.child(command).pid
        except (LookupError, psutil.Error):
            return None

    def server_pid(self, name: str) -> int | None:
        path = self.data_dir / ("pg/postmaster.pid" if name == "postgres" else "redis/redis.pid")
        try:
            pid = int(path.read_text().split()[0])
            alive = psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except (OSError, ValueError, IndexError, psutil.Error):
            return None
        return pid if alive else None

    def descendants(self) -> list[psutil.Process]:
        return psutil.Process(self.proc.pid).children(recursive=True)

    def close(self) -> None:
        self.http.close()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)


def wait_for(check: Callable[[], Any], timeout: float, what: str, up: Up | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if up is not None and up.proc.poll() is not None:
            pytest.fail(f"`up` exited ({up.proc.returncode}) waiting for {what}:\n{up.output()}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} after {timeout} s" + (f":\n{up.output()}" if up else ""))
        time.sleep(0.2)


def alive(procs: list[psutil.Process]) -> list[str]:
    found = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(f"{proc.pid} {' '.join(proc.cmdline())}")
        except psutil.NoSuchProcess:
            continue
    return found


def gone(procs: list[psutil.Process]) -> bool:
    return not alive(procs)


def port_free(port: int) -> bool:
    """Nothing listens there: a new `up` could bind it (SO_REUSEADDR, as uvicorn does, so
    that our own closed connections in TIME_WAIT do not count)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen()
        except OSError:
            return False
    return True


@pytest.fixture
def up_factory(tmp_path: Path) -> Iterator[Callable[..., Up]]:
    started: list[Up] = []

    def start(**kwargs: Any) -> Up:
        started.append(Up(tmp_path / "ts", **kwargs))
        return started[-1]

    yield start
    for up in started:
        up.close()


def test_up_restarts_what_dies_and_sigint_stops_it_when_inherited_ignored(
    up_factory: Callable[..., Up],
) -> None:
    up = up_factory(ignore_sigint=True)
    assert up.query_ok()
    seen = up.descendants()

    # `trendscope demo-token` (the README's way to refresh the token) finds the embedded
    # PostgreSQL of the running `up` and rewrites the token file.
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    fresh = subprocess.run(
        [sys.executable, "-m", "api.cli", "demo-token", "--data-dir", str(up.data_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()
    assert (up.data_dir / "demo-token").read_text().strip() == fresh
    up.auth = {"Authorization": f"Bearer {fresh}"}
    assert up.query_ok()

    # A worker killed hard comes back (a new pid) and the log says so; the API keeps answering.
    worker = up.child_pid("worker")
    os.kill(worker, signal.SIGKILL)  # type: ignore[arg-type]
    wait_for(lambda: "restarting worker in 1 s (exit code -9)" in up.output(), 30, "log", up)
    wait_for(lambda: up.child_pid("worker") not in (None, worker), 30, "new worker", up)
    assert up.query_ok()

    # The Dramatiq main process: its worker process goes with it, a new pair comes up.
    dramatiq = up.child_pid("analytics-worker")
    assert dramatiq is not None
    old_workers = psutil.Process(dramatiq).children()
    assert old_workers
    os.kill(dramatiq, signal.SIGKILL)
    wait_for(lambda: "restarting analytics-worker in 1 s (exit code -9)" in up.output(), 30, "log")
    wait_for(lambda: gone(old_workers), 30, "the old Dramatiq worker process gone", up)
    wait_for(lambda: up.child_pid("analytics-worker") not in (None, dramatiq), 30, "Dramatiq", up)

    # The same for the API process itself.
    api = up.child_pid("api")
    os.kill(api, signal.SIGKILL)  # type: ignore[arg-type]
    wait_for(lambda: up.child_pid("api") not in (None, api), 30, "new API process", up)
    wait_for(up.query_ok, 60, "answers from the restarted API", up)
    assert "restarting api in 1 s (exit code -9)" in up.output()

    # Embedded Redis killed: back on the same port, /readyz recovers.
    redis_pid = up.server_pid("redis")
    assert redis_pid is not None
    seen += [psutil.Process(redis_pid)]
    os.kill(redis_pid, signal.SIGKILL)
    wait_for(lambda: up.server_pid("redis") not in (None, redis_pid), 30, "new redis", up)
    wait_for(lambda: up.get("/readyz") == 200, 60, "/readyz 200 after redis", up)
    assert "restarting redis in" in up.output()

    # Embedded PostgreSQL killed: back with its data, GraphQL answers again.
    pg_pid = up.server_pid("postgres")
    assert pg_pid is not None
    os.kill(pg_pid, signal.SIGKILL)
    wait_for(lambda: up.server_pid("postgres") not in (None, pg_pid), 60, "new postgres", up)
    wait_for(lambda: up.get("/readyz") == 200, 60, "/readyz 200 after postgres", up)
    wait_for(up.query_ok, 60, "GraphQL answers after postgres", up)
    assert "restarting postgres in" in up.output()

    # SIGINT was ignored when `up` started; it still stops everything.
    seen += up.descendants()
    up.proc.send_signal(signal.SIGINT)
    assert up.proc.wait(90) == 0, up.output()
    wait_for(lambda: gone(seen), 10, "every child stopped")
    assert _ours(up.data_dir) == []


def test_sigkill_of_up_leaves_no_process_behind(up_factory: Callable[..., Up]) -> None:
    up = up_factory(replay=True)
    wait_for(lambda: up.child_pid("demo-replay") is not None, 30, "the demo replay", up)
    children = up.descendants()
    commands = " | ".join(" ".join(p.cmdline()) for p in children)
    for expected in ("api.cli api", "api.cli worker", "api.cli analytics-worker", "demo-replay"):
        assert expected in commands, commands
    assert {"postgres", "redis-server"} <= {p.name() for p in children}

    up.proc.kill()  # SIGKILL: `up` runs no clean-up code at all
    up.proc.wait(10)
    try:
        wait_for(lambda: gone(children), 60, "no child of the killed `up`")
    except BaseException:
        print("still running:", alive(children))
        raise
    wait_for(lambda: _ours(up.data_dir) == [], 10, "no process in the data dir")
    assert port_free(up.port)


def test_backoff_doubles_to_the_cap_and_resets_after_a_stable_run() -> None:
    unit = _Unit("worker", started_at=0.0)
    delays = []
    now = 1.0
    for _ in range(7):  # crash-looping: each run lasts a second
        delays.append(unit.scheduled(-9, now))
        unit.started_at, now = now + delays[-1], now + delays[-1] + 1
    assert delays == [1, 2, 4, 8, 16, 30, 30]
    unit.started_at = now
    assert unit.scheduled(1, now + STABLE_AFTER) == 1  # ran long enough: a fresh start
