"""A throw-away tenant migrations package: the real ones plus one that adds a column.

Used by `bench/tenants_scale.py` (a one-column migration across 1,000 schemas) and by
`tests/tenants/test_tenants_scale.py`, so that neither adds a column to the product's own
migrations.
"""

from __future__ import annotations

import importlib
import secrets
import shutil
import sys
from pathlib import Path

from tenants.migrate import TENANT_MIGRATIONS

COLUMN_MIGRATION = """from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("tenant", "{previous}")]

    operations = [
        ops.AddField(
            model_name="Influencer",
            name="{column}",
            field=fields.BooleanField(null=True),
        ),
    ]
"""


def column_migration_package(root: Path, column: str = "scale_check") -> str:
    """Write `<root>/<pkg>/tenant/` = the real tenant migrations + `9999_add_<column>` (a
    nullable boolean column on `influencer`), put `root` on sys.path, and return the module name to
    pass as `migrate_all(tenant_migrations=...)`."""
    source = Path(importlib.import_module(TENANT_MIGRATIONS).__path__[0])
    package = f"scale_migrations_{secrets.token_hex(4)}"
    target = root / package / "tenant"
    target.mkdir(parents=True)
    (root / package / "__init__.py").write_text("")
    names = sorted(p.stem for p in source.glob("[0-9]*.py"))
    for name in names:
        shutil.copy(source / f"{name}.py", target / f"{name}.py")
    (target / "__init__.py").write_text("")
    (target / f"9999_add_{column}.py").write_text(
        COLUMN_MIGRATION.format(previous=names[-1], column=column)
    )
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    importlib.invalidate_caches()
    return f"{package}.tenant"
