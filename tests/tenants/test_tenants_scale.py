"""migrate_all's fast path: one read across schemas, skip the up-to-date ones, migrate the
rest concurrently; a failing tenant is reported and the others still migrate."""

from __future__ import annotations

from pathlib import Path

from bench._migrations import column_migration_package
from tenants.migrate import applied_by_schema, disk_migrations, migrate_all
from tenants.tx import tenant_tx
from tests.conftest import GQL, Tenant


async def columns(schema: str) -> set[str]:
    async with tenant_tx(schema) as tx:
        _, rows = await tx.conn.execute_query(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = $1 AND table_name = 'influencer'",
            [schema],
        )
    return {r["column_name"] for r in rows}


async def test_applied_migrations_are_read_for_all_schemas_at_once(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    found = await applied_by_schema([tenant.schema, other_tenant.schema, "t_not_there"])
    assert (
        found[tenant.schema] == found[other_tenant.schema] == disk_migrations("migrations.tenant")
    )
    assert found["t_not_there"] == set()


async def test_a_new_migration_reaches_every_schema_once(
    gql: GQL, tmp_path: Path, tenant: Tenant, other_tenant: Tenant
) -> None:
    module = column_migration_package(tmp_path, column="scale_check")
    mine = [tenant.schema, other_tenant.schema]
    report = await migrate_all(schemas=mine, tenant_migrations=module)
    assert report.failures == {}
    assert report.tenants_changed == {s: ["tenant.9999_add_scale_check"] for s in mine}
    for s in mine:
        assert "scale_check" in await columns(s)
    again = await migrate_all(schemas=mine, tenant_migrations=module)
    assert again.tenants_changed == {} and again.failures == {}
    assert again.tenants_migrated == 2
    # The column is in these two schemas only; other tenants were not asked.
    third = await gql.sign_up()
    assert "scale_check" not in await columns(third.schema)


async def test_a_failing_tenant_is_reported_and_the_others_migrate(
    gql: GQL, tmp_path: Path, tenant: Tenant, other_tenant: Tenant
) -> None:
    module = column_migration_package(tmp_path, column="scale_fail")
    async with tenant_tx(tenant.schema) as tx:  # break this tenant: its table is gone
        await tx.conn.execute_script("DROP TABLE influencer CASCADE")
    report = await migrate_all(
        schemas=[tenant.schema, other_tenant.schema], tenant_migrations=module
    )
    assert set(report.failures) == {tenant.schema}
    assert report.tenants_changed == {other_tenant.schema: ["tenant.9999_add_scale_fail"]}
    assert "scale_fail" in await columns(other_tenant.schema)
    found = await applied_by_schema([tenant.schema])
    assert ("tenant", "9999_add_scale_fail") not in found[tenant.schema]  # rolled back
