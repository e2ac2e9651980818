"""`trendscope up` as a user runs it: embedded PostgreSQL and Redis (no DATABASE_URL /
REDIS_URL), healthy within 60 s, the demo token answers `influencers(first: 5)`, a `postAdded`
subscription receives a replayed post within 30 s, and SIGINT leaves no process behind."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest
import websockets

from tests.conftest import _free_port

pytestmark = pytest.mark.slow  # process-level: `pytest -m "not slow"` leaves it out


def _ours(data_dir: Path) -> list[psutil.Process]:
    """Every live process whose command line or working directory is under data_dir."""
    found = []
    for proc in psutil.process_iter(["cmdline", "cwd"]):
        try:
            text = " ".join(proc.info["cmdline"] or []) + " " + (proc.info["cwd"] or "")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if str(data_dir) in text and proc.pid != os.getpid():
            found.append(proc)
    return found


async def test_up_runs_everything_and_ctrl_c_stops_it(tmp_path: Path) -> None:
    data_dir = tmp_path / "ts"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update({"ENV": "development", "ARQ_QUEUE_NAME": f"trendscope-up-{port}:arq"})
    env["DRAMATIQ_NAMESPACE"] = f"trendscope-up-{port}"
    started = time.monotonic()
    up = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "api.cli",
        "up",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
    )
    spawned: list[psutil.Process] = []
    try:
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, timeout=5) as http:
            healthy = False
            while time.monotonic() - started < 60 and up.returncode is None:
                try:
                    healthy = (await http.get("/healthz")).status_code == 200
                except httpx.HTTPError:
                    pass
                if healthy:
                    break
                await asyncio.sleep(0.25)
            assert healthy, "/healthz not 200 within 60 s"

            token = (data_dir / "demo-token").read_text().strip()
            auth = {"Authorization": f"Bearer {token}"}
            body = (
                await http.post(
                    "/graphql",
                    json={"query": "{ influencers(first: 5) { edges { node { id } } } }"},
                    headers=auth,
                )
            ).json()
            assert "errors" not in body, body
            assert len(body["data"]["influencers"]["edges"]) == 5
            # the demo tenant is on Pro, so the README walkthrough can add influencers
            plan = (
                await http.post(
                    "/graphql",
                    json={"query": "{ viewer { tenant { plan { name } } } }"},
                    headers=auth,
                )
            ).json()
            assert plan["data"]["viewer"]["tenant"]["plan"] == {"name": "pro"}, plan

        spawned = psutil.Process(up.pid).children(recursive=True)
        ws = await websockets.connect(
            f"ws://127.0.0.1:{port}/graphql",
            subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        )
        try:
            await ws.send(json.dumps({"type": "connection_init", "payload": auth}))
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "connection_ack"
            query = "subscription { postAdded { externalId text } }"
            await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}}))
            msg = json.loads(await asyncio.wait_for(ws.recv(), 30))
            assert msg["type"] == "next", msg
            assert msg["payload"]["data"]["postAdded"]["externalId"]
        finally:
            await ws.close()
    finally:
        if up.returncode is None:
            up.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(up.wait(), 60)
            except TimeoutError:
                up.kill()
                raise
    assert up.returncode == 0
    assert len(spawned) >= 5  # postgres, redis, api, ARQ worker, Dramatiq (+ its worker), replay
    left = [p for p in spawned if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert left == [], left
    assert _ours(data_dir) == []
