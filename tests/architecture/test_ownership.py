"""Issue 13, items 3 and 6: plans sit below the domain, and resolvers translate while
services decide.

Static checks over the source (every import, function-level ones included; every call), so a
limit check, an audit entry or an ORM query written back into a resolver fails here, and
behavioural checks that the services themselves do what the resolvers used to do."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from domain.audit.models import AuditLog
from domain.audit.service import Actor
from domain.collection.connections import connections
from domain.errors import PlanLimitReached
from domain.influencers import rules
from domain.influencers.service import influencers
from domain.webhooks.service import webhooks
from tenants.models import Tenant as TenantRow
from tenants.tx import tenant_tx
from tests.conftest import GQL, Tenant, set_plan

ROOT = Path(__file__).resolve().parents[2]
# The GraphQL engine's own files (their move to api/graphql/ is another item of issue 13).
ENGINE = {"schema/extensions.py", "schema/compiled.py"}
ORM_CALLS = {
    "filter",
    "get",
    "all",
    "exists",
    "exclude",
    "get_or_none",
    "get_or_create",
    "update_or_create",
    "create",
    "bulk_create",
    "select_for_update",
    "execute_query",
    "execute_query_dict",
    "execute_script",
    "raw",
}
DECISIONS = {"check_within", "ensure_within", "ensure_feature", "emit", "record"}


def _sources(*packages: str) -> list[tuple[str, ast.Module]]:
    out = []
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            out.append((rel, ast.parse(path.read_text(), rel)))
    return out


def _imported(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def test_nothing_below_billing_imports_billing() -> None:
    offenders = [
        f"{rel}: {name}"
        for rel, tree in _sources("core", "tenants", "domain")
        for name in sorted(_imported(tree))
        if name == "billing" or name.startswith("billing.")
    ]
    assert offenders == [], offenders


def test_the_plans_live_beside_the_tenant_policy() -> None:
    assert (ROOT / "tenants/plans.py").exists() and (ROOT / "tenants/entitlements.py").exists()
    assert not (ROOT / "billing/plans.py").exists()
    assert not (ROOT / "billing/entitlements.py").exists()
    for rel, tree in _sources("tenants"):
        assert not {n for n in _imported(tree) if n.split(".")[0] in {"domain", "billing"}}, rel


def test_resolvers_write_no_orm_audit_event_or_limit_check() -> None:
    offenders = []
    for rel, tree in _sources("schema"):
        if rel in ENGINE:
            continue
        for name in _imported(tree):
            # reads are fine (audit.list, entitlements.usage, is_restricted); writes and
            # checks are not: the ORM itself, jobs, and the refusing limit checks
            if name.startswith("tortoise.") and name != "tortoise.transactions.in_transaction":
                offenders.append(f"{rel}: imports {name}")
            if name.startswith("jobs.") or name.rsplit(".", 1)[-1] in DECISIONS - {"record"}:
                offenders.append(f"{rel}: imports {name}")
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            attr = node.func.attr
            owner = node.func.value
            # Model.filter(...), models.Model.create(...): a CapWords class, not a service
            # instance nor a CONSTANT mapping
            owner_name = (
                owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", "")
            )
            if attr in ORM_CALLS and owner_name[:1].isupper() and not owner_name.isupper():
                offenders.append(f"{rel}:{node.lineno}: {owner_name}.{attr}(")
            if attr in {"execute_query", "execute_query_dict", "execute_script"}:
                offenders.append(f"{rel}:{node.lineno}: .{attr}(")
            if attr in DECISIONS and owner_name in {"audit", "events", "entitlements"}:
                offenders.append(f"{rel}:{node.lineno}: {owner_name}.{attr}(")
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                if node.func.id in DECISIONS - {"record"} or node.func.id.startswith("enqueue"):
                    offenders.append(f"{rel}:{node.lineno}: {node.func.id}(")
    assert offenders == [], offenders


def _input(name: str) -> rules.InfluencerInput:
    account = rules.AccountInput(platform="instagram", handle=name, followers=1000)
    return rules.InfluencerInput(display_name=name, category=None, accounts=(account,))


async def test_the_influencer_service_checks_the_plan(gql: GQL, tenant: Tenant) -> None:
    """`InfluencerService.track` refuses the sixth influencer on Free, without a resolver."""
    row = await TenantRow.get(slug=tenant.slug)
    async with tenant_tx(tenant.schema):
        for i in range(5):
            await influencers.track(row.id, _input(f"own{i}"))
    with pytest.raises(PlanLimitReached) as refused:
        async with tenant_tx(tenant.schema):
            await influencers.track(row.id, _input("sixth"))
    assert (refused.value.limit, refused.value.allowed) == ("tracked_influencers", 5)
    async with tenant_tx(tenant.schema):
        assert await influencers.count() == 5
    await set_plan(tenant.slug, "starter")
    async with tenant_tx(tenant.schema):
        await influencers.track(row.id, _input("sixth"))
        assert await influencers.count() == 6


async def test_services_write_their_own_audit_entries(gql: GQL, tenant: Tenant) -> None:
    """Connecting a credential and changing a webhook endpoint are audited by the services
    (the resolvers only pass who acts)."""
    row = await TenantRow.get(slug=tenant.slug)
    actor = Actor(user_id=None, key="key:test")
    async with tenant_tx(tenant.schema):
        conn = await connections.connect(
            "youtube", {"api_key": "k" * 20}, "mine", tenant_id=row.id, actor=actor
        )
        assert (await connections.by_ids([conn.id, conn.id + 1000])) == {conn.id: conn}
        await connections.disconnect("youtube", tenant_id=row.id, actor=actor)
        endpoint, _secret = await webhooks.create(
            url="http://127.0.0.1:9/in",
            events=["post.added"],
            description="",
            allow_private=True,
            tenant_id=row.id,
            actor=actor,
        )
        await webhooks.update(endpoint.id, allow_private=True, tenant_id=row.id, actor=actor)
        await webhooks.delete(endpoint.id, tenant_id=row.id, actor=actor)
    entries = await AuditLog.filter(tenant_id=row.id, actor_key="key:test").order_by("id")
    assert [(e.action, e.target_type, e.metadata) for e in entries] == [
        ("credential.connected", "PlatformConnection", {"platform": "youtube"}),
        ("credential.disconnected", "PlatformConnection", {"platform": "youtube"}),
        ("webhook_endpoint.created", "WebhookEndpoint", {"url": "http://127.0.0.1:9/in"}),
        ("webhook_endpoint.updated", "WebhookEndpoint", {"url": "http://127.0.0.1:9/in"}),
        ("webhook_endpoint.deleted", "WebhookEndpoint", {"url": "http://127.0.0.1:9/in"}),
    ]
