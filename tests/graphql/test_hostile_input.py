"""Hostile and malformed input on the GraphQL HTTP endpoint (issue 12, items 9, 10, 11, 13).

Each is answered with a GraphQL-shaped 4xx carrying `extensions.code`, never a 500; it changes
nothing; and /metrics counts it under its code, never as a server error. Everything goes
through the real app served by uvicorn (conftest `server`), over a socket.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from prometheus_client import REGISTRY

from tests.conftest import GQL, IMPORT_POSTS, Server, Tenant, upload_request

GRJ = "application/graphql-response+json"
SERVER_ERRORS = ("INTERNAL_SERVER_ERROR", "HTTP_500")
INFLUENCERS = "{ influencers(first: 50) { edges { node { id displayName } } } }"
ADD = """mutation($name: String!) { addInfluencer(input: {displayName: $name}) {
    __typename ... on AddInfluencerSuccess { influencer { id } } } }"""
REMOVE = "mutation($id: ID!) { removeInfluencer(id: $id) { __typename } }"
LOG_OUT = """mutation($t: String!) { logOut(refreshToken: $t) {
    __typename ... on LogOutSuccess { revoked } } }"""
REFRESH = "mutation($t: String!) { refreshToken(refreshToken: $t) { __typename } }"


def errors_counted(code: str) -> float:
    # In-process (the test server runs in this process): the counter /metrics exposes.
    return REGISTRY.get_sample_value("trendscope_errors_total", {"code": code}) or 0.0


@contextmanager
def no_server_errors() -> Iterator[None]:
    before = {code: errors_counted(code) for code in SERVER_ERRORS}
    yield
    assert {code: errors_counted(code) for code in SERVER_ERRORS} == before


async def post_raw(
    gql: GQL, body: bytes, *, token: str | None = None, accept: str | None = GRJ
) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    request = gql.http.build_request("POST", "/graphql", content=body, headers=headers)
    if accept is None:
        del request.headers["accept"]
    else:
        request.headers["accept"] = accept
    return await gql.http.send(request)


def refusal(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The body of a GraphQL-shaped refusal: errors with a message and the code, no data."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0] in (GRJ, "application/json")
    body: dict[str, Any] = response.json()
    assert "data" not in body, body
    assert body["errors"] and all(isinstance(e["message"], str) for e in body["errors"]), body
    assert [e["extensions"]["code"] for e in body["errors"]] == [code] * len(body["errors"])
    return body


async def names(gql: GQL, tenant: Tenant) -> list[str]:
    data = await gql.ok(INFLUENCERS, token=tenant.token)
    return sorted(e["node"]["displayName"] for e in data["influencers"]["edges"])


# --- item 9: malformed bodies -------------------------------------------------------------

DEEP = "[" * 20_000 + "]" * 20_000
MALFORMED = {
    "null": b"null",
    "a string": b'"{ __typename }"',
    "a number": b"7",
    "invalid UTF-8": b'{"query": "{ __typename \xff }"}',
    "variables nested 20,000 deep": (
        '{"query": "{ __typename }", "variables": {"a": ' + DEEP + "}}"
    ).encode(),
    # the mutation would store the name if the surrogate got through to PostgreSQL
    "a lone surrogate in a variable": json.dumps({"query": ADD, "variables": {"name": "x"}})
    .encode()
    .replace(b'"x"', b'"\\ud800"'),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
@pytest.mark.parametrize("accept", [GRJ, None])
async def test_malformed_body_is_400_bad_request_and_changes_nothing(
    gql: GQL, tenant: Tenant, case: str, accept: str | None
) -> None:
    before = await names(gql, tenant)
    counted = errors_counted("BAD_REQUEST")
    with no_server_errors():
        response = await post_raw(gql, MALFORMED[case], token=tenant.token, accept=accept)
        refusal(response, 400, "BAD_REQUEST")
    assert errors_counted("BAD_REQUEST") == counted + 1
    assert await names(gql, tenant) == before
    assert (await gql.ok("{ __typename }"))["__typename"] == "Query"  # still serving


async def test_a_bare_number_where_a_global_id_is_expected_is_bad_user_input(
    gql: GQL, tenant: Tenant
) -> None:
    added = await gql.ok(ADD, {"name": "kept"}, token=tenant.token)
    kept = added["addInfluencer"]["influencer"]["id"]
    counted = errors_counted("BAD_USER_INPUT")
    with no_server_errors():
        for body in (
            {"query": REMOVE, "variables": {"id": 123}},  # a variable
            {"query": "{ node(id: 123) { id } }"},  # a literal
            {"query": 'mutation { removeInfluencer(id: "123") { __typename } }'},
        ):
            response = await post_raw(gql, json.dumps(body).encode(), token=tenant.token)
            refused = refusal(response, 400, "BAD_USER_INPUT")
            assert "global id" in refused["errors"][0]["message"]
    assert errors_counted("BAD_USER_INPUT") == counted + 3
    assert "kept" in await names(gql, tenant)
    # a real id still works
    removed = await gql.ok(REMOVE, {"id": kept}, token=tenant.token)
    assert removed["removeInfluencer"]["__typename"] == "RemoveInfluencerSuccess"


# --- item 11: every GraphQL request error has a code ----------------------------------------


async def test_request_errors_carry_codes(gql: GQL, tenant: Tenant) -> None:
    cases = {
        "GRAPHQL_PARSE_FAILED": {"query": "{"},
        "GRAPHQL_VALIDATION_FAILED": {"query": "{ noSuchField }"},
        "BAD_USER_INPUT": {
            "query": "query($n: Int!) { influencers(first: $n) { edges { cursor } } }",
            "variables": {"n": "many"},
        },
    }
    with no_server_errors():
        for code, body in cases.items():
            counted = errors_counted(code)
            response = await post_raw(gql, json.dumps(body).encode(), token=tenant.token)
            refusal(response, 400, code)
            assert errors_counted(code) == counted + 1, code


async def test_a_thousand_duplicated_fields_get_a_coded_error(gql: GQL, tenant: Tenant) -> None:
    for query in ("{ " + "__typename " * 1000 + "}", "{ " + "nope " * 1000 + "}"):
        with no_server_errors():
            response = await post_raw(gql, json.dumps({"query": query}).encode())
            body = refusal(response, 400, "GRAPHQL_VALIDATION_FAILED")
        assert body["errors"][-1]["message"] != "Validation aborted."


async def test_refusals_carry_extensions_cost(gql: GQL, tenant: Tenant) -> None:
    """docs/api-limits.md: every answer carries `extensions.cost`, refusals included."""
    query = (
        "{ influencers(first: 100) { edges { node {"
        " accounts { recentPosts(limit: 50) { id } } } } } }"
    )
    response = await post_raw(gql, json.dumps({"query": query}).encode(), token=tenant.token)
    body = refusal(response, 400, "QUERY_TOO_COSTLY")
    cost = body["extensions"]["cost"]
    assert cost["requested"] > cost["limit"] > 0
    assert body["errors"][0]["extensions"]["cost"] == cost
    # refused by another limit, or by validation: priced all the same
    aliases = (
        "{ "
        + " ".join(f"a{i}: influencers(first: 2) {{ edges {{ cursor }} }}" for i in range(16))
        + " }"
    )
    for query, code in (
        (aliases, "TOO_MANY_ALIASES"),
        ("{ viewer { role } nope }", "GRAPHQL_VALIDATION_FAILED"),
    ):
        response = await post_raw(gql, json.dumps({"query": query}).encode(), token=tenant.token)
        body = refusal(response, 400, code)
        assert body["extensions"]["cost"]["requested"] > 0, body
        assert body["extensions"]["cost"]["limit"] == cost["limit"]


# --- item 10: request size ------------------------------------------------------------------


def address(server: Server) -> tuple[str, int]:
    url = urlsplit(server.url)
    assert url.hostname and url.port
    return url.hostname, url.port


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, Any]]:
    """The status and JSON body of an HTTP/1.1 response (Content-Length framed)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = dict(line.split(": ", 1) for line in lines[1:] if line)
    length = int({k.lower(): v for k, v in headers.items()}["content-length"])
    return status, json.loads(await reader.readexactly(length))


async def test_a_declared_content_length_over_the_limit_is_refused_before_the_body(
    server: Server,
) -> None:
    host, port = address(server)
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(
            b"POST /graphql HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            b"Content-Length: 20000000\r\n\r\n"
        )
        await writer.drain()
        # Not one byte of the 20 MB is sent: the answer must come without them.
        with no_server_errors():
            status, body = await asyncio.wait_for(read_response(reader), timeout=30)
    finally:
        writer.close()
    assert status == 413, body
    assert body["errors"][0]["extensions"] == {
        "code": "REQUEST_TOO_LARGE",
        "limit": server.settings.limits.max_json_body_bytes,
    }


async def test_a_chunked_body_is_refused_once_it_passes_the_limit(server: Server) -> None:
    """No Content-Length: the server counts while reading and answers 413 while the client
    is still sending, so it never holds more than the limit."""
    host, port = address(server)
    limit = server.settings.limits.max_json_body_bytes
    reader, writer = await asyncio.open_connection(host, port)
    chunk = b'{"query": "{ __typename }", "pad": "' + b"x" * 65_536
    sent = 0
    try:
        writer.write(
            b"POST /graphql HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        while sent <= limit:  # just past the limit, and the body is never finished
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent += len(chunk)
        await writer.drain()
        with no_server_errors():
            status, body = await asyncio.wait_for(read_response(reader), timeout=30)
    finally:
        writer.close()
    assert status == 413, body
    assert body["errors"][0]["extensions"]["code"] == "REQUEST_TOO_LARGE"


async def test_json_bodies_over_the_limit_are_413_and_under_it_run(
    gql: GQL, server: Server, tenant: Tenant
) -> None:
    limit = server.settings.limits.max_json_body_bytes
    query = "{ __typename }"
    big = json.dumps({"query": query, "extensions": {"pad": "x" * limit}}).encode()
    with no_server_errors():
        response = await post_raw(gql, big, token=tenant.token, accept=None)
        refusal(response, 413, "REQUEST_TOO_LARGE")
    fits = json.dumps({"query": query, "extensions": {"pad": "x" * (limit // 2)}}).encode()
    response = await post_raw(gql, fits, token=tenant.token)
    assert response.status_code == 200, response.text
    assert response.json()["data"] == {"__typename": "Query"}


async def test_uploads_have_their_own_limit(
    gql: GQL, server: Server, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A multipart upload may be `import_max_bytes` larger than a JSON body."""
    monkeypatch.setattr(server.settings.limits, "max_json_body_bytes", 64 * 1024)
    monkeypatch.setattr(server.settings, "import_max_bytes", 256 * 1024)
    auth = {"Authorization": f"Bearer {tenant.token}"}
    # larger than a JSON body may be, within the import limit: the import runs
    row = b'{"platform": "instagram", "handle": "nobody", "external_id": "x", "text": "%s"}\n'
    content = row % (b"y" * 100 * 1024)
    response = await gql.http.post(
        "/graphql", **upload_request(IMPORT_POSTS, "file", "posts.jsonl", content, headers=auth)
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"]["importPosts"]["__typename"] == "ImportPostsSuccess"
    # past the import limit plus the envelope: refused while reading
    with no_server_errors():
        response = await gql.http.post(
            "/graphql",
            **upload_request(IMPORT_POSTS, "file", "posts.jsonl", b"z" * 400_000, headers=auth),
        )
        body = refusal(response, 413, "REQUEST_TOO_LARGE")
    assert body["errors"][0]["extensions"]["limit"] == 320 * 1024


# --- item 13: cross-site multipart requests ---------------------------------------------------


async def test_multipart_without_a_preflight_header_is_refused(gql: GQL, tenant: Tenant) -> None:
    """What a form on another site can send: multipart/form-data, no custom header. Today it
    ran `logOut` for anyone; now it is refused and the refresh token still works."""
    operations = json.dumps({"query": LOG_OUT, "variables": {"t": tenant.refresh_token}})
    form = {"operations": operations, "map": "{}"}
    with no_server_errors():
        response = await gql.http.post("/graphql", data=form, files={"x": ("x", b"")})
        body = refusal(response, 400, "CSRF_PREVENTION")
    assert "GraphQL-Require-Preflight" in body["errors"][0]["message"]
    refreshed = await gql.ok(REFRESH, {"t": tenant.refresh_token})
    assert refreshed["refreshToken"]["__typename"] == "AuthPayload"
    # the same request with the header runs (a non-browser client, or a preflighted one)
    for header in ("GraphQL-Require-Preflight", "Apollo-Require-Preflight"):
        response = await gql.http.post(
            "/graphql", data=form, files={"x": ("x", b"")}, headers={header: "1"}
        )
        assert response.status_code == 200, response.text
        assert response.json()["data"]["logOut"]["__typename"] == "LogOutSuccess"


async def test_malformed_multipart_requests_are_400(gql: GQL, tenant: Tenant) -> None:
    preflight = {"GraphQL-Require-Preflight": "1", "Authorization": f"Bearer {tenant.token}"}
    ops = json.dumps({"query": IMPORT_POSTS, "variables": {"file": None}})
    forms = {
        "operations is null": {"operations": "null", "map": "{}"},
        "operations is a number": {"operations": "7", "map": "{}"},
        "map names a missing file": {"operations": ops, "map": '{"9": ["variables.file"]}'},
        "map is not an object": {"operations": ops, "map": "[1]"},
        "operations is no JSON": {"operations": "{", "map": "{}"},
        # a form field over Starlette's per-part limit (1 MiB): its own parser refuses it
        "operations over a part's size limit": {"operations": " " * (1024 * 1024 + 1) + ops},
    }
    with no_server_errors():
        for name, form in forms.items():
            response = await gql.http.post(
                "/graphql", data=form, files={"0": ("a.csv", b"a")}, headers=preflight
            )
            assert response.status_code == 400, (name, response.text)
            assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST", name
