"""Issue 13, item 4: one GraphQL engine room. `schema/` (types, resolvers, loaders) does not
import the transports and pipeline above it, and what stays on Strawberry's private surface
(the batch check of `GraphQLApp`) is pinned by a test, so an upgrade that renames it fails
here rather than silently answering Strawberry's untyped errors."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from tests.conftest import GQL, Tenant

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> list[str]:
    """Every module a file imports, at any level (function-level imports included)."""
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_schema_never_imports_api() -> None:
    offending = {
        str(path.relative_to(ROOT)): name
        for path in (ROOT / "schema").rglob("*.py")
        for name in _imports(path)
        if name == "api" or name.startswith("api.")
    }
    assert offending == {}


def test_the_pipeline_lives_in_api_graphql() -> None:
    # The execution pipeline left schema/: no extension, limit or SQL path is defined there.
    for path in (ROOT / "schema").rglob("*.py"):
        source = path.read_text()
        assert "SchemaExtension" not in source, path
        assert "execute_query" not in source, path


def _codes(body: Any) -> list[str]:
    return [e.get("extensions", {}).get("code") for e in body.get("errors", [])]


async def test_batch_refusals_are_ours_and_typed(gql: GQL, tenant: Tenant) -> None:
    auth = {"Authorization": f"Bearer {tenant.token}"}
    empty = await gql.http.post("/graphql", json=[], headers=auth)
    assert empty.status_code == 400 and _codes(empty.json()) == ["BAD_REQUEST"]
    assert "empty batch" in empty.json()["errors"][0]["message"]
    not_objects = await gql.http.post("/graphql", json=[{"query": "{ __typename }"}, 1])
    assert not_objects.status_code == 400 and _codes(not_objects.json()) == ["BAD_REQUEST"]
    assert "must be an object" in not_objects.json()["errors"][0]["message"]
    too_many = await gql.http.post("/graphql", json=[{"query": "{ __typename }"}] * 11)
    assert too_many.status_code == 400 and _codes(too_many.json()) == ["BATCH_TOO_LARGE"]
    ok = await gql.http.post("/graphql", json=[{"query": "{ __typename }"}], headers=auth)
    assert ok.status_code == 200 and [r["data"] for r in ok.json()] == [{"__typename": "Query"}]


async def test_a_send_that_pushes_back_finishes_in_order_on_public_asyncio() -> None:
    """The frame path steps the ASGI send by hand; when it suspends (the transport is
    paused), a task waits for the future it suspended on with `asyncio.wait` (no asyncio
    internal) and the frames queued meanwhile follow in order."""
    import asyncio

    from api.graphql.ws import SubscriptionServer
    from api.graphql.ws_connection import Connection
    from core.settings import get_settings

    written: list[str] = []
    paused: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def send(message: dict[str, Any]) -> None:  # the server's send, as uvicorn's
        if not paused.done():
            await paused  # the transport is paused until the client reads
        written.append(message["text"])

    conn = Connection(SubscriptionServer(get_settings()), send)
    conn.post("one")  # suspends: a task takes over
    assert conn.sender is not None and written == []
    conn.post("two")
    conn.post(("three-", "payload"))
    paused.set_result(None)
    await asyncio.wait_for(conn.sender, 5)
    assert written == ["one", "two", "three-payload}"]
    assert conn.sender is None and not conn.closing
    conn.post("four")  # written at once again, no task
    assert written[-1] == "four" and conn.sender is None
