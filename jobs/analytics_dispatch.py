"""Sending Dramatiq messages after commit, from async code (the API and ARQ jobs)."""

from __future__ import annotations

import asyncio

from tenants.tx import current_tx


def send_recount_after_commit(tenant_schema: str) -> None:
    async def send() -> None:
        from jobs.actors import recount_totals  # the broker is configured on import

        await asyncio.to_thread(recount_totals.send, tenant_schema)

    current_tx().on_commit(send)


def send_analysis_after_commit(tenant_schema: str) -> None:
    """`analytics.analyze_posts` for the tenant once the current transaction commits (after a
    collection task or an import stored new posts)."""

    async def send() -> None:
        from jobs.actors import analyze_posts

        await asyncio.to_thread(analyze_posts.send, tenant_schema)

    current_tx().on_commit(send)
