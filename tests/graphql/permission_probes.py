"""The permission matrix's probes, generated from the schema, and how their answers are read
(tests/graphql/test_permission_matrix.py runs them; tests/graphql/permission_tables.py says what to expect)."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import websockets
from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    Undefined,
    get_named_type,
)

from api.graphql.executable import schema
from tests.conftest import GQL, Server, upload_request
from tests.graphql import permission_tables as expected

DENIED = {"FORBIDDEN", "UNAUTHENTICATED"}
GS = schema._schema


@dataclass(frozen=True)
class Caller:
    """Who calls: a name for messages, the headers that carry its credential, its scopes."""

    name: str
    headers: dict[str, str]
    scopes: frozenset[str]
    person: bool = True  # False: an API key, which has scopes but no user behind it


def bearer(name: str, token: str | None, scopes: frozenset[str], person: bool = True) -> Caller:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return Caller(name, headers, scopes, person)


def root_fields() -> list[tuple[str, str, GraphQLField]]:
    out = []
    for kind, root in (
        ("query", GS.query_type),
        ("mutation", GS.mutation_type),
        ("subscription", GS.subscription_type),
    ):
        assert root is not None
        out += [(kind, name, f) for name, f in root.fields.items()]
    return out


def node_types() -> list[str]:
    node = GS.type_map["Node"]
    assert isinstance(node, GraphQLInterfaceType)
    return sorted(t.name for t in GS.get_possible_types(node))


PLACEHOLDER_SCALARS: dict[str, Any] = {
    "String": "x",
    # "Influencer:999999999": a well-formed global id naming nothing (an unknown type name in
    # node(id:) is an unexpected error today, see docs/members.md)
    "ID": "SW5mbHVlbmNlcjo5OTk5OTk5OTk=",
    "Int": 1,
    "Float": 1.0,
    "Boolean": False,
    "DateTime": "2026-01-01T00:00:00+00:00",
    "Date": "2026-01-01",
    "JSON": {},
}


def placeholder(t: GraphQLInputType) -> Any:
    """A value of type `t` that passes validation (required input fields filled)."""
    if isinstance(t, GraphQLNonNull):
        return placeholder(t.of_type)
    if isinstance(t, GraphQLList):
        return []
    if isinstance(t, GraphQLEnumType):
        return next(iter(t.values))
    if isinstance(t, GraphQLInputObjectType):
        return {
            name: placeholder(f.type)
            for name, f in t.fields.items()
            if isinstance(f.type, GraphQLNonNull) and f.default_value is Undefined
        }
    assert isinstance(t, GraphQLScalarType)
    if t.name == "Upload":
        return None  # sent as a multipart file part
    return PLACEHOLDER_SCALARS.get(t.name, "x")


@dataclass
class Call:
    kind: str
    name: str
    scope: str | None
    document: str
    variables: dict[str, Any]
    uploads: list[str] = field(default_factory=list)


def call_for(kind: str, name: str, f: GraphQLField) -> Call:
    defs, args, variables, uploads = [], [], {}, []
    for arg_name, arg in f.args.items():
        if not isinstance(arg.type, GraphQLNonNull):
            continue
        defs.append(f"${arg_name}: {arg.type}")
        args.append(f"{arg_name}: ${arg_name}")
        variables[arg_name] = placeholder(arg.type)
        if get_named_type(arg.type).name == "Upload":
            uploads.append(arg_name)
    selection = (
        ""
        if isinstance(get_named_type(f.type), GraphQLScalarType | GraphQLEnumType)
        else ("{ __typename }")
    )
    head = f"{kind} Matrix" + (f"({', '.join(defs)})" if defs else "")
    body = name + (f"({', '.join(args)})" if args else "") + f" {selection}"
    scope = expected.field_scope(name)
    return Call(kind, name, scope, f"{head} {{ {body} }}", variables, uploads)


CALLS = [call_for(kind, name, f) for kind, name, f in root_fields()]


# -- nested paths: generated from the schema -------------------------------------------------


@dataclass(frozen=True)
class Path_:
    """A query from a root field down to a field whose type needs a scope the path so far
    does not guarantee. `needs[i]` is what the i-th field of `path` needs (the root: its
    field's scope; below: its type's scope, or None)."""

    edge: tuple[str, str]  # (parent type, field): what the probe exercises
    path: tuple[str, ...]
    needs: tuple[str | None, ...]

    @property
    def document(self) -> str:
        text = "__typename"
        for name in reversed(self.path):
            text = f"{name} {{ {text} }}"
        return f"query Path {{ {text} }}"


def _required_args(f: GraphQLField) -> bool:
    return any(
        isinstance(a.type, GraphQLNonNull) and a.default_value is Undefined for a in f.args.values()
    )


def nested_paths(*, roots_with_arguments: bool) -> dict[tuple[str, str], Path_]:
    """The shortest path to each cross-scope field, from the Query root fields with a scope
    (breadth first over object-typed fields; interfaces and unions are reached by `node`)."""
    assert GS.query_type is not None
    found: dict[tuple[str, str], Path_] = {}
    queue: deque[tuple[GraphQLObjectType, tuple[str, ...], tuple[str | None, ...]]] = deque()
    for name, f in GS.query_type.fields.items():
        target = get_named_type(f.type)
        scope = expected.field_scope(name)
        if scope is None or not isinstance(target, GraphQLObjectType):
            continue
        if _required_args(f) and not roots_with_arguments:
            continue
        queue.append((target, (name,), (scope,)))
    seen: set[tuple[str, frozenset[str | None]]] = set()
    while queue:
        parent, path, needs = queue.popleft()
        held = frozenset(needs)
        if (parent.name, held) in seen or len(path) > 8:
            continue
        seen.add((parent.name, held))
        for name, f in parent.fields.items():
            target = get_named_type(f.type)
            if not isinstance(target, GraphQLObjectType) or _required_args(f):
                continue
            need = expected.type_scope(target.name)
            step = (target, (*path, name), (*needs, need))
            if need is not None and need not in held:
                found.setdefault((parent.name, name), Path_((parent.name, name), *step[1:]))
            queue.append(step)
    return found


PATHS = [
    *sorted(nested_paths(roots_with_arguments=False).values(), key=lambda p: p.edge),
    # the probe, as written: a query the compiled SQL path (api/graphql/compiled.py) answers
    Path_(
        ("InfluencerAccount", "recentPosts"),
        ("influencers", "edges", "node", "accounts", "recentPosts"),
        ("influencers:read", None, "influencers:read", "influencers:read", "posts:read"),
    ),
]


# -- running the probes ------------------------------------------------------------------------


def code_of(error: dict[str, Any]) -> str:
    return str((error.get("extensions") or {}).get("code"))


async def http_outcome(gql: GQL, caller: Caller, call: Call) -> tuple[set[str], Any]:
    """The error codes of the call's field, and the whole body (for messages)."""
    if call.uploads:
        response = await gql.http.post(
            "/graphql",
            **upload_request(
                call.document, call.uploads[0], "x.csv", b"a,b\n", call.variables, caller.headers
            ),
        )
    else:
        response = await gql.raw(call.document, call.variables, headers=caller.headers)
    body = response.json()
    codes = {
        code_of(e) for e in body.get("errors") or () if e.get("path") and e["path"][0] == call.name
    }
    if "data" not in body:  # a request error: nothing ran
        codes.add("INVALID_REQUEST")
    return codes, body


PROTO = ["graphql-transport-ws"]


async def ws_outcomes(server: Server, caller: Caller, calls: list[Call]) -> dict[str, set[str]]:
    """Subscribe to every subscription at once on one socket. A refused credential closes the
    socket (4403); a refused field answers `error` at once; an allowed one stays open (or
    completes, when its placeholder id names nothing): we read what arrives until every
    subscription has either answered or been pinged past."""
    codes: dict[str, set[str]] = {c.name: set() for c in calls}
    ws = await websockets.connect(server.ws_url, subprotocols=PROTO)  # type: ignore[arg-type]
    try:
        await ws.send(json.dumps({"type": "connection_init", "payload": caller.headers}))
        try:
            ack = json.loads(await asyncio.wait_for(ws.recv(), 10))
        except websockets.ConnectionClosed as closed:
            assert closed.rcvd is not None and closed.rcvd.code == 4403
            return {c.name: {"UNAUTHENTICATED"} for c in calls}
        assert ack["type"] == "connection_ack"
        for i, call in enumerate(calls):
            payload = {"query": call.document, "variables": call.variables}
            await ws.send(json.dumps({"id": str(i), "type": "subscribe", "payload": payload}))
        # Denials are decided before the resolver runs; a round of pings lets them arrive.
        for n in range(20):
            await ws.send(json.dumps({"type": "ping", "payload": {"n": n}}))
        pongs = 0
        while pongs < 20:
            msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if msg["type"] == "pong":
                pongs += 1
            elif msg["type"] == "error":
                name = calls[int(msg["id"])].name
                codes[name] |= {code_of(e) for e in msg["payload"]}
            elif msg["type"] == "next":
                name = calls[int(msg["id"])].name
                codes[name] |= {code_of(e) for e in msg["payload"].get("errors") or ()}
    finally:
        await ws.close()
    return codes


def check(caller: Caller, call: Call, codes: set[str], detail: object) -> str | None:
    if "INVALID_REQUEST" in codes:  # the placeholders did not validate
        return f"{call.name} as {caller.name}: the generated call is invalid: {detail}"
    if call.scope is None:  # public: never refused for a missing scope
        if not caller.person:  # about a person (viewer, logOut, ...): a key has none
            return None
        allowed = "FORBIDDEN" not in codes
        expected_ = True
    else:
        allowed = not (codes & DENIED)
        expected_ = call.scope in caller.scopes
    if "INTERNAL_SERVER_ERROR" in codes:
        return f"{call.name} as {caller.name}: unexpected error {detail}"
    if allowed != expected_:
        return (
            f"{call.kind} {call.name} (needs {call.scope}) as {caller.name}: "
            f"{'allowed' if allowed else 'refused'}, expected the opposite: {detail}"
        )
    return None


NODE = "query($id: ID!) { node(id: $id) { __typename } }"
# Comments are reached through their post only: node(id:) answers null even when allowed.
NOT_BY_NODE = {"Comment"}


async def check_node(gql: GQL, caller: Caller, type_name: str, node_id: str) -> str | None:
    """`node` needs influencers:read itself; the object then needs its type's scope."""
    body = (await gql.raw(NODE, {"id": node_id}, headers=caller.headers)).json()
    codes = {code_of(e) for e in body.get("errors") or ()}
    node = (body.get("data") or {}).get("node")
    needs = {"influencers:read", expected.type_scope(type_name)}
    if needs <= caller.scopes:
        found = node is not None or type_name in NOT_BY_NODE
        if codes or not found:
            return f"node({type_name}) as {caller.name}: expected it: {body}"
    elif node is not None or not codes & DENIED or codes - DENIED:
        return f"node({type_name}) (needs {needs}) as {caller.name}: expected a refusal: {body}"
    return None


def _reached(data: Any, path: tuple[str, ...]) -> bool:
    """Some object on the path's parent level holds its last field (the probe ran)."""
    level = [data]
    for key in path:
        nxt = []
        for value in level:
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, dict) and key in item:
                    nxt.append(item[key])
        level = nxt
    return bool(level)


async def check_path(gql: GQL, caller: Caller, p: Path_) -> str | None:
    if p.needs[0] not in caller.scopes:
        return None  # refused at the root: the root matrix covers it
    body = (await gql.raw(p.document, headers=caller.headers)).json()
    refused_at = {
        tuple(k for k in e.get("path") or () if isinstance(k, str))
        for e in body.get("errors") or ()
        if code_of(e) in DENIED
    }
    others = [e for e in body.get("errors") or () if code_of(e) not in DENIED]
    first = next((i for i, need in enumerate(p.needs) if need and need not in caller.scopes), None)
    want = set() if first is None else {p.path[: first + 1]}
    if refused_at != want or others:
        return f"{'.'.join(p.path)} as {caller.name}: expected a refusal at {want}: {body}"
    if caller.name == "owner" and not _reached(body["data"], p.path):
        return f"{'.'.join(p.path)}: the seeded data does not reach it: {body}"
    return None
