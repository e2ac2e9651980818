"""The permission matrix, generated from the schema, checked against hand-written tables.

What to try comes from the schema (the SDL's object): every root Query, Mutation and
Subscription field, every type implementing `Node` (through `node(id:)`), and every nested path
into a type that needs another scope than the path so far (`influencers { ... accounts {
recentPosts } }` needs posts:read). What to expect comes from tests/graphql/permission_tables.py,
written by hand to match docs/members.md and never imported from the code under test; a root
field or Node type missing from those tables fails, and so does a table the docs disagree with.

Each probe is sent by every caller (the four roles, API keys with chosen scopes, nobody), one
request per (caller, probe), and the answer must carry a FORBIDDEN / UNAUTHENTICATED error
exactly where the caller lacks the scope: at the root field, at `node`, or at the first nested
field whose type needs a scope the caller does not hold. A domain answer (NotFound,
ValidationFailed, a payload's PermissionDenied from a business rule) means the scope check let
the call through.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from graphql import (
    GraphQLField,
    GraphQLObjectType,
    get_named_type,
)
from strawberry.relay import GlobalID

from domain.accounts.rules import scopes_for_role
from tenants.tx import tenant_tx
from tests.apikeys.test_api_keys import create_key
from tests.collection.test_import import jsonl, rows_for
from tests.conftest import GQL, Server, Tenant, import_file, set_plan
from tests.graphql import permission_tables as expected
from tests.graphql.permission_probes import (
    CALLS,
    GS,
    PATHS,
    Caller,
    bearer,
    check,
    check_node,
    check_path,
    http_outcome,
    nested_paths,
    node_types,
    root_fields,
    ws_outcomes,
)
from tests.members.test_members import MEMBERS, invite, join

# -- the tables against the schema, the code's roles and the docs ----------------------------


def test_every_root_field_and_node_type_is_in_the_tables() -> None:
    listed = [n for names in expected.FIELD_SCOPES.values() for n in names]
    assert len(listed) == len(set(listed)), "a root field is listed under two scopes"
    assert not set(listed) & expected.PUBLIC_FIELDS
    fields = {name for _, name, _ in root_fields()}
    missing = sorted(fields - set(listed) - expected.PUBLIC_FIELDS)
    assert missing == [], (
        f"new root fields: add them to tests/graphql/permission_tables.py: {missing}"
    )
    gone = sorted((set(listed) | expected.PUBLIC_FIELDS) - fields)
    assert gone == [], f"the tables name root fields the schema lacks: {gone}"
    untyped = [t for t in node_types() if expected.type_scope(t) is None]
    assert untyped == [], f"Node types without a scope in the tables: {untyped}"
    types = [t for names in expected.TYPE_SCOPES.values() for t in names]
    assert sorted(set(types) - set(GS.type_map)) == []


def test_roles_hold_the_documented_scopes() -> None:
    for role, scopes in expected.ROLE_SCOPES.items():
        assert scopes_for_role(role) == scopes, role


def test_every_cross_scope_path_is_probed() -> None:
    """Paths found only from root fields with arguments (`trend(id:)`) would not be tried:
    the argument-free roots must reach every cross-scope field too."""
    everywhere = set(nested_paths(roots_with_arguments=True))
    assert everywhere == {p.edge for p in PATHS}, everywhere ^ {p.edge for p in PATHS}
    assert ("InfluencerAccount", "recentPosts") in everywhere  # the probe that found 9a


def _table(doc: str, header: str) -> Iterator[list[str]]:
    """The rows of the markdown table whose header line starts with `header`."""
    lines = doc.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            return
        yield [cell.strip() for cell in line.strip("|").split("|")]


def _names(cell: str) -> set[str]:
    return set(re.findall(r"`([^`]+)`", cell))


def test_the_docs_state_these_tables() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "members.md").read_text()
    roles: dict[str, frozenset[str]] = {}
    for role, cell in _table(doc, "| role | scopes |"):
        base = re.match(r"(\w+)'s \+", cell)
        roles[role] = frozenset(_names(cell) | (roles[base.group(1)] if base else set()))
    assert roles == expected.ROLE_SCOPES
    fields = {scope.strip("`"): _names(cell) for scope, cell in _table(doc, "| scope | root")}
    public = fields.pop("none")
    assert public == expected.PUBLIC_FIELDS
    assert fields == {s: set(names) for s, names in expected.FIELD_SCOPES.items()}
    types = {scope.strip("`"): _names(cell) for scope, cell in _table(doc, "| scope | types")}
    assert types == {s: set(names) for s, names in expected.TYPE_SCOPES.items()}


def _holder_scope(t: GraphQLObjectType) -> str | None:
    """The scope an object of `t` needed to be reached: its own, or for a Relay connection or
    edge, its nodes'."""
    if "edges" in t.fields and "pageInfo" in t.fields:
        edge = get_named_type(t.fields["edges"].type)
        assert isinstance(edge, GraphQLObjectType)
        return _holder_scope(edge)
    if "node" in t.fields and "cursor" in t.fields:
        return expected.type_scope(get_named_type(t.fields["node"].type).name)
    return expected.type_scope(t.name)


def _declared_scope(f: GraphQLField) -> str | None:
    """The scope a field's own requires(...) declares (the root fields' mechanism)."""
    from strawberry.permission import PermissionExtension

    definition = f.extensions["strawberry-definition"]
    for ext in definition.extensions:
        if isinstance(ext, PermissionExtension):
            return next(getattr(p, "scope", None) for p in ext.permissions)
    return None


def test_every_field_into_a_scoped_type_checks_the_scope() -> None:
    """Beside the probes (which need data to reach a field), the schema itself: every field
    whose type needs a scope its parent type does not checks it (or declares it)."""
    roots = {GS.query_type, GS.mutation_type, GS.subscription_type}
    unguarded = []
    for parent in GS.type_map.values():
        if not isinstance(parent, GraphQLObjectType) or parent.name.startswith("__"):
            continue
        for name, f in parent.fields.items():
            need = expected.type_scope(get_named_type(f.type).name)
            if need is None or (parent not in roots and need == _holder_scope(parent)):
                continue
            if need in (getattr(f.resolve, "scope", None), _declared_scope(f)):
                continue
            unguarded.append(f"{parent.name}.{name} ({need})")
    assert unguarded == []


# -- callers and the data the probes reach ---------------------------------------------------


# API keys a partner would hold: read-only, read-write, and two narrow ones whose scopes cut
# across the nested paths (influencers without posts or analytics; analytics alone).
KEY_SCOPES = {
    "read-key": ["influencers:read", "posts:read", "collection:read", "analytics:read"],
    "write-key": [
        "influencers:read",
        "influencers:write",
        "posts:read",
        "posts:write",
        "collection:read",
        "collection:write",
        "analytics:read",
        "analytics:write",
    ],
    "influencers-key": ["influencers:read"],
    "analytics-key": ["analytics:read"],
}


async def callers(gql: GQL, owner: Tenant) -> list[Caller]:
    await set_plan(owner.slug, "pro")  # 4 seats and the partner API are needed
    out = [bearer("owner", owner.token, expected.ROLE_SCOPES["owner"])]
    for role in ("admin", "analyst", "viewer"):
        token, _ = await join(gql, owner, role)
        out.append(bearer(role, token, expected.ROLE_SCOPES[role]))
    for name, scopes in KEY_SCOPES.items():
        created = await create_key(gql, owner.token, scopes)
        assert created["__typename"] == "CreateApiKeySuccess", created
        out.append(bearer(name, created["key"], frozenset(scopes), person=False))
    out.append(bearer("unauthenticated", None, frozenset()))
    return out


def gid(type_name: str, ident: object) -> str:
    return str(GlobalID(type_name, str(ident)))


async def seed(gql: GQL, owner: Tenant) -> dict[str, str]:
    """One object of every Node type, linked so that every nested path reaches something:
    the global id of each, by type."""
    from domain.analytics.models import InfluencerScore
    from domain.collection.models import PlatformConnection
    from domain.influencers.models import Influencer, InfluencerAccount
    from domain.insights.models import AlertEvent, AlertRule, Anomaly, Insight
    from domain.posts.models import Comment, Post
    from domain.trends.models import Trend, TrendInfluencer

    now = datetime.now(UTC)
    ids: dict[str, str] = {}
    await webhook_with_a_delivery(gql, owner)  # a task, an endpoint and a delivery
    async with tenant_tx(owner.schema):
        inf = await Influencer.create(display_name="Ana", notes="", total_followers=10)
        acc = await InfluencerAccount.create(
            influencer=inf, platform="instagram", handle="ana", followers=10
        )
        post = await Post.create(
            account=acc,
            influencer_id=inf.id,
            platform="instagram",
            external_id="p1",
            url="",
            text="secret post text",
            hashtags=[],
            mentions=[],
            published_at=now,
        )
        comment = await Comment.create(post=post, platform="instagram", external_id="c1")
        await InfluencerScore.create(
            influencer_id=inf.id,
            computed_at=now,
            formula="t",
            influence_score=1.0,
            authenticity_score=1.0,
            followers=10,
            posts=1,
            breakdown=[],
            inputs={},
            authenticity={},
        )
        anomaly = await Anomaly.create(
            key="a1",
            kind="viral_post",
            influencer_id=inf.id,
            post_id=post.id,
            metric="interactions",
            value=2.0,
            baseline=1.0,
            score=2.0,
            severity="high",
            window_start=now,
            window_end=now,
        )
        rule = await AlertRule.create(
            name="r", metric="posts", condition="above", threshold=1.0, window_hours=24,
            influencer=inf,
        )  # fmt: skip
        event = await AlertEvent.create(rule=rule, metric="posts", condition="above", threshold=1)
        insight = await Insight.create(kind="daily_digest", period_start=now, period_end=now)
        trend = await Trend.create(
            kind="hashtag", key="x", label="#x", platform="all", status="rising", score=1.0,
            z=1.0, velocity=1.0, acceleration=0.0, baseline_median=0.0, baseline_mad=0.0,
            volume=1, engagement=1, first_seen=now, last_seen=now, last_updated=now,
            computed_at=now,
        )  # fmt: skip
        await TrendInfluencer.create(
            trend=trend, influencer_id=inf.id, rank=1, posts=1, engagement=1, contribution=1.0
        )
        connection = await PlatformConnection.create(platform="youtube", secret="x")
    for model, row in (
        ("Influencer", inf),
        ("InfluencerAccount", acc),
        ("Post", post),
        ("Comment", comment),
        ("Anomaly", anomaly),
        ("AlertRule", rule),
        ("AlertEvent", event),
        ("Insight", insight),
        ("Trend", trend),
        ("PlatformConnection", connection),
    ):
        ids[model] = gid(model, row.id)
    invited = await invite(gql, owner.token, f"later-{owner.slug}@example.com", "VIEWER")
    ids["Invitation"] = invited["invitation"]["id"]
    for type_name, query in (
        ("Member", MEMBERS),
        ("AuditEntry", "{ auditLog(first: 1) { edges { node { id } } } }"),
        ("CollectionTask", "{ collectionTasks(first: 1) { edges { node { id } } } }"),
        ("WebhookEndpoint", "{ webhookEndpoints { id } }"),
        ("WebhookDelivery", "{ webhookDeliveries(first: 1) { edges { node { id } } } }"),
    ):
        ids[type_name] = _node_ids(await gql.ok(query, token=owner.token))[0]
    return ids


async def test_permission_matrix(gql: GQL, server: Server, tenant: Tenant) -> None:
    everyone = await callers(gql, tenant)
    ids = await seed(gql, tenant)
    assert sorted(ids) == node_types()
    problems: list[str | None] = []
    subscriptions = [c for c in CALLS if c.kind == "subscription"]
    for caller in everyone:
        for call in CALLS:
            if call.kind != "subscription":
                codes, body = await http_outcome(gql, caller, call)
                problems.append(check(caller, call, codes, body))
        outcomes = await ws_outcomes(server, caller, subscriptions)
        for call in subscriptions:
            problems.append(check(caller, call, outcomes[call.name], outcomes[call.name]))
        for type_name, node_id in ids.items():
            problems.append(await check_node(gql, caller, type_name, node_id))
        for p in PATHS:
            problems.append(await check_path(gql, caller, p))
    found = [p for p in problems if p]
    assert found == [], "\n".join(found)


async def test_a_write_only_key_cannot_read_through_a_mutation_payload(
    gql: GQL, tenant: Tenant
) -> None:
    """A payload's object needs its type's scope too; the refusal rolls the mutation back."""
    await set_plan(tenant.slug, "pro")
    key = (await create_key(gql, tenant.token, ["influencers:write"]))["key"]
    body = await gql(
        """mutation { addInfluencer(input: {displayName: "W"}) {
            ... on AddInfluencerSuccess { influencer { id displayName } } } }""",
        token=key,
    )
    assert [(e["path"], e["extensions"]["code"]) for e in body["errors"]] == [
        (["addInfluencer", "influencer"], "FORBIDDEN")
    ]
    listed = await gql.ok("{ influencers { edges { node { id } } } }", token=tenant.token)
    assert listed["influencers"]["edges"] == []


@pytest.mark.parametrize(
    "query",
    [
        MEMBERS,
        "{ invitations(pendingOnly: false) { edges { node { id email } } } }",
        "{ auditLog(first: 100) { edges { node { id action targetId metadata } } } }",
        "{ webhookEndpoints { id url } }",
        "{ webhookDeliveries(first: 100) { edges { node { id payload } } } }",
    ],
)
async def test_tenant_a_credentials_reach_nothing_of_b(
    gql: GQL, tenant: Tenant, other_tenant: Tenant, query: str
) -> None:
    await set_plan(tenant.slug, "starter")
    admin, _ = await join(gql, tenant, "admin", name="adm")
    _, b_member = await join(gql, other_tenant, "analyst", name="bm")
    await webhook_with_a_delivery(gql, other_tenant)
    b_view = await gql.ok(query, token=other_tenant.token)
    assert _node_ids(b_view), b_view  # B has something of this kind for A to miss
    for token in (tenant.token, admin):
        # naming B's tenant is refused outright: no membership there
        refused = await gql.raw(query, token=token, headers={"X-Tenant": other_tenant.slug})
        assert refused.status_code == 403
        # A's own view shares nothing with B's
        mine = await gql.ok(query, token=token)
        text = json.dumps(mine)
        assert other_tenant.slug not in text and other_tenant.email not in text
        assert not set(_node_ids(mine)) & set(_node_ids(b_view))
        # B's node ids resolve to nothing for A
        for node_id in [*_node_ids(b_view), b_member]:
            got = await gql.ok(
                "query($id: ID!) { node(id: $id) { id } }", {"id": node_id}, token=token
            )
            assert got["node"] is None


def _node_ids(data: dict[str, Any]) -> list[str]:
    (value,) = data.values()
    nodes = value if isinstance(value, list) else [e["node"] for e in value["edges"]]
    return [n["id"] for n in nodes if "id" in n]


async def webhook_with_a_delivery(gql: GQL, owner: Tenant) -> None:
    """An endpoint with one delivery (caused by an import's task events). The endpoint is
    paused at once: the queued attempt then ends without a request or a retry, so no deferred
    retry stays in the shared queue for later tests' burst workers to wait for."""
    created = await gql.ok(
        """mutation { createWebhookEndpoint(input: {url: "http://127.0.0.1:9/hook",
            events: ["collection_task.updated"]}) { __typename
            ... on CreateWebhookEndpointSuccess { endpoint { id } } } }""",
        token=owner.token,
    )
    endpoint_id = created["createWebhookEndpoint"]["endpoint"]["id"]
    task = await import_file(gql, owner.token, "x.jsonl", jsonl(rows_for(["nobody"], 1)))
    assert task["__typename"] == "ImportPostsSuccess"  # its task's creation is an event
    paused = await gql.ok(
        """mutation($id: ID!) { updateWebhookEndpoint(input: {id: $id, isActive: false}) {
            __typename } }""",
        {"id": endpoint_id},
        token=owner.token,
    )
    assert paused["updateWebhookEndpoint"]["__typename"] == "UpdateWebhookEndpointSuccess"
