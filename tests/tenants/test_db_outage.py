"""PostgreSQL outages and a saturated pool: typed 503s, then recovery without a restart.

The outage test runs `trendscope api` in a subprocess on a PostgreSQL of its own (the embedded
server's binaries, in a temporary directory), stops that server for real, and starts it again:
the machine's shared PostgreSQL is never touched.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tortoise import connections

from api.embedded import _Postgres
from tests.conftest import GQL, Server, Services, Tenant, _free_port

pytestmark = pytest.mark.slow  # process-level: `pytest -m "not slow"` leaves it out

ROOT = Path(__file__).resolve().parents[2]
LIST = "{ influencers(first: 1) { edges { node { id } } } }"
ADD = """mutation { addInfluencer(input: {displayName: "Ana", accounts: []}) { __typename } }"""


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) >= 1
    body = response.json()
    assert "data" not in body or body["data"] is None, body
    codes = {e["extensions"]["code"] for e in body["errors"]}
    assert codes == {"SERVICE_UNAVAILABLE"}, body
    assert "Errno" not in response.text and "refused" not in response.text.lower()


# --- a saturated pool -------------------------------------------------------------------------


async def test_a_saturated_pool_answers_503_with_retry_after_then_recovers(
    gql: GQL, server: Server, tenant: Tenant
) -> None:
    pool: Any = connections.get("default")._pool
    saved = pool.acquire_timeout
    held = []
    pool.acquire_timeout = 0.3
    try:
        # Take every connection the pool may open (the server shares this process's pool).
        while len(held) < pool.get_max_size():
            held.append(await pool.acquire())
        response = await gql.raw(LIST, token=tenant.token)
        assert_unavailable(response)
        ready = await gql.http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["pool"]["idle"] == 0
        assert ready.json()["pool"]["acquireTimeouts"] >= 1
        metrics = (await gql.http.get("/metrics")).text
        assert 'trendscope_db_pool_connections{state="acquire_timeouts"}' in metrics
    finally:
        for conn in held:
            await pool.release(conn)
        pool.acquire_timeout = saved
    assert (await gql.raw(LIST, token=tenant.token)).status_code == 200
    assert (await gql.http.get("/readyz")).status_code == 200


# --- PostgreSQL stopped and started again -----------------------------------------------------


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[_Postgres]:
    pg = _Postgres(tmp_path / "pg")
    pg.start()
    try:
        yield pg
    finally:
        pg.stop()


def _url(pg: _Postgres) -> str:
    port = (pg.pgdata / "embedded.port").read_text().strip()
    return f"postgresql://postgres@127.0.0.1:{port}/trendscope"


@pytest.fixture
def api_on_own_postgres(
    own_postgres: _Postgres, services: Services, tmp_path: Path
) -> Iterator[tuple[str, _Postgres]]:
    env = {
        **os.environ,
        "DATABASE_URL": _url(own_postgres),
        "REDIS_URL": services.redis_url,
        "DB_ACQUIRE_TIMEOUT_SECONDS": "2",
    }
    subprocess.run(
        [sys.executable, "-m", "api.cli", "migrate"], cwd=ROOT, env=env, check=True, timeout=120
    )
    port = _free_port()
    log = (tmp_path / "api.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "api", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            assert proc.poll() is None, (tmp_path / "api.log").read_text()
            try:
                if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        yield url, own_postgres
    finally:
        proc.kill()
        proc.wait()
        log.close()


def test_postgres_outage_is_503_and_heals_without_a_restart(
    api_on_own_postgres: tuple[str, _Postgres],
) -> None:
    url, pg = api_on_own_postgres
    with httpx.Client(base_url=url, timeout=30) as http:
        signed = http.post(
            "/graphql",
            json={
                "query": """mutation($i: SignUpInput!) { signUp(input: $i) {
                    ... on AuthPayload { accessToken } } }""",
                "variables": {
                    "i": {
                        "email": "o@outage.example",
                        "password": "correct horse battery",
                        "tenantName": "outage",
                        "tenantSlug": "outage",
                    }
                },
            },
        ).json()
        auth = {"Authorization": f"Bearer {signed['data']['signUp']['accessToken']}"}
        assert http.post("/graphql", json={"query": LIST}, headers=auth).status_code == 200

        pg.stop()
        # Longer than the plan cache (10 s): on the old code the rate limiter's plan look-up
        # then turned every request into a plain-text 500.
        deadline = time.monotonic() + 14
        seen = 0
        while time.monotonic() < deadline:
            for payload in ({"query": LIST}, {"query": ADD}):
                assert_unavailable(http.post("/graphql", json=payload, headers=auth))
                seen += 1
            upload = http.post(
                "/graphql",
                headers={**auth, "GraphQL-Require-Preflight": "1"},
                data={
                    "operations": '{"query":"mutation($f: Upload!){ importPosts(file: $f)'
                    '{ __typename } }","variables":{"f":null}}',
                    "map": '{"0":["variables.f"]}',
                },
                files={"0": ("p.jsonl", b'{"platform":"instagram"}\n')},
            )
            assert_unavailable(upload)
            ready = http.get("/readyz")
            assert ready.status_code == 503 and ready.json()["database"].startswith("error")
            time.sleep(1)
        assert seen >= 10

        pg.start()  # same data directory, same port
        for _ in range(100):
            response = http.post("/graphql", json={"query": LIST}, headers=auth)
            if response.status_code == 200:
                break
            assert_unavailable(response)
            time.sleep(0.2)
        assert response.status_code == 200 and "errors" not in response.json()
        assert http.get("/readyz").status_code == 200
