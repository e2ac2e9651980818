"""The tenant transaction and migrations, as design.md specifies them."""

from __future__ import annotations

import pytest
from tortoise.exceptions import OperationalError

from domain.influencers.models import Influencer
from tenants.migrate import migrate_all, migrate_public, migrate_tenant
from tenants.tx import InvalidSchemaName, current_tx_or_none, public_tx, tenant_tx
from tests.conftest import Tenant


async def test_rows_land_in_the_bound_schema_only(tenant: Tenant, other_tenant: Tenant) -> None:
    async with tenant_tx(tenant.schema):
        await Influencer.create(display_name="only in A")
    async with tenant_tx(other_tenant.schema):
        assert await Influencer.filter(display_name="only in A").count() == 0
    async with tenant_tx(tenant.schema):
        assert await Influencer.filter(display_name="only in A").count() == 1


async def test_query_without_a_tenant_fails_loudly(server: object) -> None:
    with pytest.raises(OperationalError, match="does not exist"):
        async with public_tx():
            await Influencer.all().count()


@pytest.mark.parametrize("bad", ["public", "t_", "t_A", 't_x"; drop', "x_abc", "t_" + "a" * 51])
async def test_invalid_schema_names_are_refused(bad: str) -> None:
    with pytest.raises(InvalidSchemaName):
        async with tenant_tx(bad):
            pass


async def test_search_path_is_local_to_the_transaction(tenant: Tenant) -> None:
    async with tenant_tx(tenant.schema) as tx:
        _, rows = await tx.conn.execute_query("SHOW search_path")
        assert rows[0]["search_path"].split(",")[0].strip('"') == tenant.schema
    assert current_tx_or_none() is None
    async with public_tx() as tx:
        _, rows = await tx.conn.execute_query("SHOW search_path")
        assert tenant.schema not in rows[0]["search_path"]


async def test_after_commit_runs_only_after_commit(tenant: Tenant) -> None:
    seen: list[str] = []

    async def hook() -> None:
        seen.append("ran")

    async with tenant_tx(tenant.schema) as tx:
        tx.on_commit(hook)
        assert seen == []
    assert seen == ["ran"]
    with pytest.raises(RuntimeError):
        async with tenant_tx(tenant.schema) as tx:
            tx.on_commit(hook)
            raise RuntimeError("boom")
    assert seen == ["ran"]


async def test_migrations_run_twice_change_nothing(tenant: Tenant) -> None:
    assert await migrate_public() == []
    assert await migrate_tenant(tenant.schema) == []
    report = await migrate_all()
    assert report.public_applied == []
    assert report.tenants_changed == {}
    assert report.failures == {}
    assert report.tenants_migrated >= 1
    async with tenant_tx(tenant.schema) as tx:
        _, rows = await tx.conn.execute_query(
            "SELECT app, name FROM tortoise_migrations ORDER BY id"
        )
    import importlib
    import pkgutil

    on_disk = sorted(
        name
        for _, name, _ in pkgutil.iter_modules(
            importlib.import_module("migrations.tenant").__path__
        )
    )
    # each migration on disk recorded exactly once
    assert [(r["app"], r["name"]) for r in rows] == [("tenant", n) for n in on_disk]
