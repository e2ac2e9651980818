"""Automatic persisted queries (Apollo's protocol) over POST and GET, their per-tenant
namespace, and the allow-list mode (tenant A locked down, tenant B not affected)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import GQL, Tenant

VIEWER = "{ viewer { tenant { slug } } }"


def sha(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()


def ext(query: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": sha(query)}}


async def post(gql: GQL, tenant: Tenant, body: dict[str, Any]) -> httpx.Response:
    return await gql.http.post(
        "/graphql", json=body, headers={"authorization": f"Bearer {tenant.token}"}
    )


async def get(gql: GQL, tenant: Tenant, params: dict[str, str]) -> httpx.Response:
    return await gql.http.get(
        "/graphql",
        params=params,
        headers={"authorization": f"Bearer {tenant.token}", "accept": "application/json"},
    )


def error(response: httpx.Response) -> tuple[str, str]:
    e = response.json()["errors"][0]
    return e["message"], e["extensions"]["code"]


async def cli(*args: str) -> tuple[int, str, str]:
    """`trendscope ...` in its own process, against this run's database (the services
    fixture put its URLs in the environment)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "api.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=os.environ.copy(),
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def run_in_schema(tenant: Tenant, query: str) -> list[Any]:
    """Execute through the schema itself (no HTTP view), as the websocket handler does."""
    from api.auth import principal_from_credentials
    from api.graphql.executable import schema
    from core.settings import get_settings
    from schema.context import Context
    from schema.dataloaders import Loaders

    settings = get_settings()
    principal = await principal_from_credentials(settings, f"Bearer {tenant.token}", None)
    assert principal is not None
    context = Context(
        request=None,  # type: ignore[arg-type]
        response=None,
        settings=settings,
        hub=None,
        request_id="test",
        principal=principal,
        loaders=Loaders(principal.tenant_schema),
    )
    result = await schema.execute(query, context_value=context)
    return list(result.errors or [])


def unique_query() -> str:
    # a query text no other test (or earlier run) has registered
    return "{ viewer { tenant { slug } } } # " + secrets.token_hex(4)


async def test_round_trip_over_post_and_get(gql: GQL, tenant: Tenant) -> None:
    query = unique_query()
    # 1. hash only: unknown
    miss = await post(gql, tenant, {"extensions": ext(query)})
    assert error(miss) == ("PersistedQueryNotFound", "PERSISTED_QUERY_NOT_FOUND")
    assert "data" not in miss.json()
    assert "no-cache" in miss.headers["cache-control"]
    # 2. hash and query: runs and registers
    hit = await post(gql, tenant, {"query": query, "extensions": ext(query)})
    assert hit.json()["data"] == {"viewer": {"tenant": {"slug": tenant.slug}}}
    # 3. hash only, POST and GET
    again = await post(gql, tenant, {"extensions": ext(query)})
    assert again.json()["data"] == {"viewer": {"tenant": {"slug": tenant.slug}}}
    by_get = await get(gql, tenant, {"extensions": json.dumps(ext(query))})
    assert by_get.status_code == 200, by_get.text
    assert by_get.json()["data"] == {"viewer": {"tenant": {"slug": tenant.slug}}}


async def test_get_miss_and_register_by_get_with_variables(gql: GQL, tenant: Tenant) -> None:
    query = "query($n: Int) { influencers(first: $n) { edges { cursor } } } # " + secrets.token_hex(
        4
    )
    params = {"extensions": json.dumps(ext(query)), "variables": json.dumps({"n": 1})}
    miss = await get(gql, tenant, params)
    assert miss.status_code == 200  # application/json: a GraphQL request error is a 200
    assert error(miss)[1] == "PERSISTED_QUERY_NOT_FOUND"
    assert (await get(gql, tenant, {**params, "query": query})).json()["data"]
    hit = await get(gql, tenant, params)
    assert hit.json()["data"] == {"influencers": {"edges": []}}


async def test_a_wrong_hash_or_version_is_refused_and_nothing_is_stored(
    gql: GQL, tenant: Tenant
) -> None:
    query = unique_query()
    wrong = {"persistedQuery": {"version": 1, "sha256Hash": sha(query + " ")}}
    response = await post(gql, tenant, {"query": query, "extensions": wrong})
    assert error(response)[1] == "PERSISTED_QUERY_INVALID"
    response = await post(gql, tenant, {"extensions": wrong})
    assert error(response)[1] == "PERSISTED_QUERY_NOT_FOUND"
    v2 = {"persistedQuery": {"version": 2, "sha256Hash": sha(query)}}
    assert error(await post(gql, tenant, {"query": query, "extensions": v2}))[1] == (
        "PERSISTED_QUERY_INVALID"
    )
    # an invalid query is not stored
    bad = "{ nope } # " + secrets.token_hex(4)
    await post(gql, tenant, {"query": bad, "extensions": ext(bad)})
    assert error(await post(gql, tenant, {"extensions": ext(bad)}))[1] == (
        "PERSISTED_QUERY_NOT_FOUND"
    )


async def test_persisted_queries_are_per_tenant(
    gql: GQL, tenant: Tenant, other_tenant: Tenant
) -> None:
    query = unique_query()
    await post(gql, tenant, {"query": query, "extensions": ext(query)})
    assert (await post(gql, tenant, {"extensions": ext(query)})).json()["data"]
    # the other tenant cannot use (or learn about) tenant A's registration
    response = await post(gql, other_tenant, {"extensions": ext(query)})
    assert error(response)[1] == "PERSISTED_QUERY_NOT_FOUND"


@pytest.mark.slow
async def test_allow_list_mode_locks_one_tenant_only(
    gql: GQL, tenant: Tenant, other_tenant: Tenant, tmp_path: Path
) -> None:
    from tenants.policy import policies

    allowed = "query Mine { viewer { tenant { slug } } }"
    path = tmp_path / "mine.graphql"
    path.write_text(allowed)
    rc, out, err = await cli("tenants", "allow-query", tenant.slug, str(path), "--enforce")
    assert rc == 0, err
    assert out.strip() == sha(allowed)
    policies.invalidate()  # another process changed the row: this one would see it within the TTL

    # tenant A: only the registered hash runs
    ok = await post(gql, tenant, {"extensions": ext(allowed)})
    assert ok.json()["data"] == {"viewer": {"tenant": {"slug": tenant.slug}}}, ok.text
    ok = await post(gql, tenant, {"query": allowed, "extensions": ext(allowed)})
    assert ok.json()["data"]
    by_get = await get(gql, tenant, {"extensions": json.dumps(ext(allowed))})
    assert by_get.json()["data"]
    for body in (
        {"query": VIEWER},
        {"query": VIEWER, "extensions": ext(VIEWER)},
        {"extensions": ext(VIEWER)},
    ):
        refused = await post(gql, tenant, body)
        assert error(refused)[1] == "PERSISTED_QUERY_NOT_ALLOWED", body
        assert "data" not in refused.json()

    # tenant B: unaffected, and A's allow-list is not B's
    assert (await post(gql, other_tenant, {"query": VIEWER})).json()["data"]
    response = await post(gql, other_tenant, {"extensions": ext(allowed)})
    assert error(response)[1] == "PERSISTED_QUERY_NOT_FOUND"

    # enforced by the schema too, whatever the transport (websocket subscriptions included)
    assert [e.message for e in await run_in_schema(tenant, VIEWER)] == [
        "This query is not on the tenant's allow-list."
    ]
    assert await run_in_schema(tenant, allowed) == []
    assert await run_in_schema(other_tenant, VIEWER) == []

    # switched off again, A runs anything
    from api.graphql.persisted import persisted_queries

    await persisted_queries.set_enforced(tenant.slug, False)
    assert (await post(gql, tenant, {"query": VIEWER})).json()["data"]


@pytest.mark.slow
async def test_cli_refuses_invalid_documents_and_unknown_tenants(
    tenant: Tenant, tmp_path: Path
) -> None:
    bad, good = tmp_path / "bad.graphql", tmp_path / "good.graphql"
    bad.write_text("{ nope }")
    good.write_text(VIEWER)
    for slug, path in ((tenant.slug, bad), ("no_such_tenant", good)):
        rc, out, err = await cli("tenants", "allow-query", slug, str(path))
        assert rc == 2, (slug, out, err)


async def test_apq_degrades_to_a_miss_when_redis_is_down(
    gql: GQL, tenant: Tenant, monkeypatch: Any
) -> None:
    from redis.asyncio import Redis

    from core.runtime import runtime

    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    monkeypatch.setattr(runtime, "redis", dead)
    try:
        query = unique_query()
        miss = await post(gql, tenant, {"extensions": ext(query)})
        assert error(miss)[1] == "PERSISTED_QUERY_NOT_FOUND"
        ran = await post(gql, tenant, {"query": query, "extensions": ext(query)})
        assert ran.json()["data"] == {"viewer": {"tenant": {"slug": tenant.slug}}}
    finally:
        await dead.aclose()
