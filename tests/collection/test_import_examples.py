"""The sample import files the README walkthrough uploads (docs/examples/) import cleanly for
the account it adds, and say what docs/import-format.md says they do."""

from __future__ import annotations

from pathlib import Path

import pytest

from domain.posts.models import Post
from tenants.tx import tenant_tx
from tests.collection.test_import import TASK, add_accounts
from tests.conftest import GQL, Tenant, import_file, run_jobs

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"


@pytest.mark.parametrize(("name", "rows"), [("posts.jsonl", 5), ("posts.csv", 3)])
async def test_sample_import_file_imports_cleanly(
    gql: GQL, tenant: Tenant, name: str, rows: int
) -> None:
    await add_accounts(gql, tenant.token, ["ana.trips"])  # the walkthrough's addInfluencer
    content = (EXAMPLES / name).read_bytes()
    payload = await import_file(gql, tenant.token, name, content)
    assert payload["__typename"] == "ImportPostsSuccess", payload
    await run_jobs()
    done = (await gql.ok(TASK, {"id": payload["task"]["id"]}, token=tenant.token))["collectionTask"]
    assert done["errors"] == []
    assert (done["status"], done["total"], done["created"], done["skipped"]) == (
        "SUCCEEDED",
        rows,
        rows,
        0,
    )
    async with tenant_tx(tenant.schema):
        posts = await Post.all()
    assert len(posts) == rows
    assert all(p.text and p.likes > 0 for p in posts)
    assert all(p.hashtags for p in posts if "#" in p.text)  # taken from the text when absent
