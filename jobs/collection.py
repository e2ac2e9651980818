"""ARQ jobs of the collection context."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from arq import Retry
from arq.worker import RetryJob

from core.runtime import runtime
from core.settings import Settings, get_settings
from domain.analytics.service import ANALYZE_POSTS, RECOUNT_TOTALS
from domain.collection import oauth, retries, rules
from domain.collection.connections import connections
from domain.collection.connectors import (
    AccountUnavailable,
    ConnectorError,
    CredentialBroken,
    PlatformRequestFailed,
    PlatformUnavailable,
    QuotaExhausted,
    QuotaLimiter,
    RetryPolicy,
    build_connector,
)
from domain.collection.platform_runs import COLLECT_JOB, SCRAPER_ROUTES, account_ref, platform_runs
from domain.collection.service import IMPORT_JOB, collection_tasks
from domain.errors import NotFound
from jobs.registry import job
from jobs.retry import is_transient_db_error, job_retry_delay
from tenants import outbox
from tenants.entitlements import plans_by_schema
from tenants.plans import Plan
from tenants.registry import list_tenant_schemas
from tenants.tx import tenant_tx

log = structlog.get_logger(__name__)

STALE_AFTER = timedelta(seconds=60)


async def _import_file(ctx: dict[str, Any], tenant_schema: str, task_id: int) -> str:
    """`collection.import`: ingest an uploaded file in batches, resuming from the task's cursor.

    Each batch commits its rows together with the cursor, so a worker killed at any point
    leaves a task that the next run (ARQ's retry, or the requeue cron) finishes exactly.
    """
    batch_size = get_settings().import_batch_size
    async with tenant_tx(tenant_schema):
        begun = await collection_tasks.begin_import(task_id)
        if begun is None:
            return "nothing to do"
        task, file = begun
        content = bytes(file.content)
        filename = file.filename
    try:
        _, parsed = rules.parse_import(filename, content)
    except Exception as exc:  # the file was checked on upload; this is a real surprise
        async with tenant_tx(tenant_schema):
            await collection_tasks.finish(task_id, error=f"cannot parse file: {exc}")
        raise
    start = task.processed
    while start < len(parsed):
        batch = parsed[start : start + batch_size]
        async with tenant_tx(tenant_schema):
            task = await collection_tasks.import_batch(task_id, batch, start)
        start = task.processed
        log.info("import_progress", schema=tenant_schema, task=task_id, processed=start)
    async with tenant_tx(tenant_schema):
        task = await collection_tasks.finish(task_id)
        outbox.send(RECOUNT_TOTALS, tenant_schema)
        outbox.send(ANALYZE_POSTS, tenant_schema)
    return f"created={task.created} updated={task.updated} skipped={task.skipped}"


async def requeue_stale(ctx: dict[str, Any], stale_after: timedelta = STALE_AFTER) -> int:
    """`collection.requeue_stale` (cron): enqueue again the tasks whose job was lost with Redis
    (`pending`, and no job of the task in the queue) or whose worker died (`running`, no step
    committed for a while). Each counts as a failed run (domain/collection/retries.py), so a
    task whose job keeps vanishing ends `failed` instead of being requeued for ever.

    A pending task keeps its job id. A stale running task gets a job id with its attempt
    number: ARQ would keep refusing the original id while the dead job's keys live. Two runs of
    one task cannot double-count: each step checks the task's cursor under a row lock.
    """
    bounds = retry_bounds(get_settings())
    queued: set[tuple[str, str, str]] | None = None
    count = 0
    cutoff = datetime.now(UTC) - stale_after
    for schema in await list_tenant_schemas():
        async with tenant_tx(schema):
            for task_id, kind, status, attempts in await collection_tasks.stale_tasks(cutoff):
                job_name = COLLECT_JOB if kind == "collect" else IMPORT_JOB
                if status == "pending":
                    queued = await _queued_jobs() if queued is None else queued
                    if (job_name, schema, str(task_id)) in queued:
                        continue  # waiting its turn (or a deferred retry): not lost
                    reason = "its job was lost before it ran"
                else:
                    reason = f"no progress for {int(stale_after.total_seconds())}s: worker lost"
                # A running task stays running: its run may be alive and merely slow (a long
                # platform call); the duplicate run and it cannot both apply a step.
                verdict = await retries.record_failure(
                    task_id, reason, bounds, retry_after=0, wait=status == "pending"
                )
                if verdict.retry_in is None:
                    continue  # finished meanwhile, or this was one failure too many
                if status == "pending":
                    outbox.enqueue(job_name, schema, task_id)
                else:
                    outbox.enqueue(job_name, schema, task_id, suffix=f"retry{attempts}")
                count += 1
    return count


async def _queued_jobs() -> set[tuple[str, str, str]]:
    """(job name, tenant schema, task id) of every job in this process's ARQ queue, whatever
    its suffix (retry, quota): queued, deferred or running."""
    if runtime.arq is None:
        return set()
    prefix = outbox.job_id_prefix()
    found = set()
    for raw in await runtime.arq.zrange(runtime.queue_name, 0, -1):
        jid = raw.decode() if isinstance(raw, bytes) else str(raw)
        parts = jid.removeprefix(prefix).split(":")
        if jid.startswith(prefix) and len(parts) >= 3:
            found.add((parts[0], parts[1], parts[2]))
    return found


def retry_bounds(settings: Settings) -> retries.RetryBounds:
    return retries.RetryBounds(
        max_attempts=settings.job_max_attempts,
        max_age=timedelta(seconds=settings.job_max_age_seconds),
        base=settings.job_retry_base_seconds,
        cap=settings.job_retry_max_seconds,
    )


def describe(exc: BaseException) -> str:
    if isinstance(exc, ConnectorError):
        return str(exc)
    if is_transient_db_error(exc):
        return f"database unavailable: {type(exc).__name__}: {exc}"
    return f"{type(exc).__name__}: {exc}"


async def retry_or_fail(
    ctx: dict[str, Any], tenant_schema: str, task_id: int, exc: Exception
) -> str:
    """A run of the task failed with `exc`: record it and hand the job back to ARQ with the
    task's back-off (`Retry`), or, past the bounds, leave the task `failed` with the reason.
    Re-raises `exc` when the task was already finished (the run itself recorded why)."""
    retry_after = exc.retry_after if isinstance(exc, PlatformUnavailable) else None
    try:
        async with tenant_tx(tenant_schema):
            verdict = await retries.record_failure(
                task_id, describe(exc), retry_bounds(get_settings()), retry_after=retry_after
            )
    except Exception as record_exc:
        if not (is_transient_db_error(record_exc) or is_transient_db_error(exc)):
            raise
        # The database is still away: not even the failure can be written. ARQ retries the job
        # (bounded by its max_tries; then `requeue_stale` finds the task).
        raise Retry(defer=job_retry_delay(int(ctx.get("job_try") or 1))) from exc
    if verdict.retry_in is not None:
        log.warning(
            "task_retry",
            schema=tenant_schema,
            task=task_id,
            retry_in=verdict.retry_in,
            error=describe(exc),
        )
        raise Retry(defer=verdict.retry_in) from exc
    if verdict.failed_now and verdict.task is not None:
        log.warning("task_failed", schema=tenant_schema, task=task_id, error=verdict.task.error)
        return f"failed: {verdict.task.error}"
    raise exc


def task_tries(settings: Settings) -> int:
    """ARQ's tries for a collection task's job: the task's own bound (JOB_MAX_ATTEMPTS,
    domain/collection/retries.py) decides when it fails, with the reason; ARQ's max_tries is
    only a backstop above it."""
    return settings.job_max_attempts + 5


@job(IMPORT_JOB, max_tries=task_tries, timeout=600)
async def import_file(ctx: dict[str, Any], tenant_schema: str, task_id: int) -> str:
    try:
        return await _import_file(ctx, tenant_schema, task_id)
    except (Retry, RetryJob):
        raise
    except Exception as exc:
        return await retry_or_fail(ctx, tenant_schema, task_id, exc)


@job(COLLECT_JOB, max_tries=task_tries, timeout=1800)
async def collect(ctx: dict[str, Any], tenant_schema: str, task_id: int) -> str:
    try:
        return await _collect(ctx, tenant_schema, task_id)
    except (Retry, RetryJob):
        raise
    except Exception as exc:
        return await retry_or_fail(ctx, tenant_schema, task_id, exc)


async def _collect(ctx: dict[str, Any], tenant_schema: str, task_id: int) -> str:
    """`collection.collect`: one platform's accounts (of one influencer, or all), step by step.

    Platform calls happen outside any transaction; each step's rows commit together with the
    task's cursor (see domain/collection/platform_runs.py), so a killed worker resumes exactly.
    """
    settings = get_settings()
    async with tenant_tx(tenant_schema):
        task = await platform_runs.begin(task_id)
        if task is None:
            return "nothing to do"
        platform = str(task.platform)
        try:
            connection, secrets = await connections.secrets_for(
                platform, *SCRAPER_ROUTES.get(platform, ())
            )
        except NotFound:
            connection = None
    if connection is None:
        async with tenant_tx(tenant_schema):
            await platform_runs.fail(task_id, f"no active {platform} connection")
        return "no connection"
    assert runtime.http is not None and runtime.redis is not None
    source = connection.platform  # the platform itself, or a scraper route (Apify)
    try:  # an OAuth token about to expire is renewed first (domain/collection/oauth.py)
        secrets = await oauth.ensure_fresh(
            tenant_schema, connection.id, secrets, config=settings.oauth_platforms
        )
    except CredentialBroken as exc:  # the connection is already marked broken
        async with tenant_tx(tenant_schema):
            await platform_runs.fail(task_id, f"{source} refused the credential: {exc.message}")
        return "credential broken"
    connector = build_connector(
        source,
        credential_id=f"{tenant_schema}-{connection.id}",
        secrets=secrets,
        client=runtime.http,
        limiter=QuotaLimiter(runtime.redis, prefix=settings.quota_key_prefix),
        base_url=settings.connector_base_urls.get(source),
        policy=RetryPolicy(base_delay=settings.connector_retry_base_seconds),
    )
    since_param = task.params.get("since") if isinstance(task.params, dict) else None
    http = getattr(connector, "http", None)  # PlatformHttp: counts the quota units spent

    def spent(before: int) -> int:
        return int(http.units_spent) - before if http is not None else 0

    while True:
        async with tenant_tx(tenant_schema):
            step = await platform_runs.step(task_id)
        if step.task.status != "running":
            return f"task is {step.task.status}"
        account = step.account
        if account is None:
            break
        state = step.state
        units_before = int(http.units_spent) if http is not None else 0
        try:
            if step.phase == "profile":
                profile = await connector.fetch_profile(account.handle)
                async with tenant_tx(tenant_schema):
                    await platform_runs.apply_profile(task_id, state, profile, spent(units_before))
            elif step.phase == "posts":
                since = account.collected_until
                if since_param:
                    since = datetime.fromisoformat(since_param)
                page = await connector.fetch_posts(account_ref(account), state["page"], since=since)
                async with tenant_tx(tenant_schema):
                    await platform_runs.apply_posts_page(
                        task_id, state, page, settings.collect_comment_posts, spent(units_before)
                    )
            else:
                async with tenant_tx(tenant_schema):
                    target = await platform_runs.comment_target(account, state["posts"][state["p"]])
                try:
                    comments = await connector.fetch_comments(target, state["page"])
                except PlatformRequestFailed as exc:  # e.g. comments disabled on that post
                    log.info(
                        "comments_unavailable",
                        task=task_id,
                        post=target.external_id,
                        error=str(exc),
                    )
                    comments = None
                async with tenant_tx(tenant_schema):
                    await platform_runs.apply_comments_page(
                        task_id, state, comments, spent(units_before)
                    )
        except AccountUnavailable as exc:
            status = "removed" if exc.reason in ("not_found", "removed", "suspended") else "private"
            async with tenant_tx(tenant_schema):
                await platform_runs.apply_unavailable(
                    task_id, state, status, exc.reason, spent(units_before)
                )
        except CredentialBroken as exc:
            async with tenant_tx(tenant_schema):
                await connections.mark_broken(source, exc.message)
                await platform_runs.fail(task_id, f"{source} refused the credential: {exc.message}")
            return "credential broken"
        except QuotaExhausted as exc:
            # Come back when the bucket has refilled (not a failure: no retry is counted);
            # the cursor keeps our place.
            async with tenant_tx(tenant_schema):
                t = await retries.defer(task_id, exc.retry_after + 1)
                if t is not None:
                    outbox.enqueue(
                        COLLECT_JOB,
                        tenant_schema,
                        task_id,
                        suffix=f"quota{t.attempts}-{t.units_spent}",
                        defer_by=timedelta(seconds=exc.retry_after + 1),
                    )
            return f"quota exhausted, resumes in {exc.retry_after:.0f}s"
        # PlatformUnavailable goes up to `collect`: a bounded retry from the cursor.
        except PlatformRequestFailed as exc:
            async with tenant_tx(tenant_schema):
                await platform_runs.fail(task_id, str(exc))
            return "failed"
    async with tenant_tx(tenant_schema):
        task = await platform_runs.finish(task_id)
        outbox.send(RECOUNT_TOTALS, tenant_schema)
        outbox.send(ANALYZE_POSTS, tenant_schema)
    return f"created={task.created} updated={task.updated} skipped={task.skipped}"


def collect_interval(plan: Plan, override_hours: int | None = None) -> timedelta:
    """How often a tenant on `plan` is collected: the plan's `collect_interval_hours`, unless
    the COLLECT_INTERVAL_HOURS setting overrides it for everyone."""
    return timedelta(hours=override_hours or plan.collect_interval_hours)


async def schedule_collections(ctx: dict[str, Any]) -> int:
    """`collection.schedule` (cron, hourly): every tenant's due platforms get a collect task
    (normal priority: on-demand work goes first). How often is the tenant's plan's
    `collect_interval_hours`, unless the COLLECT_INTERVAL_HOURS setting overrides it."""
    override = get_settings().collect_interval_hours
    count = 0
    for schema, plan in await plans_by_schema():
        async with tenant_tx(schema):
            for platform in await platform_runs.due_platforms(collect_interval(plan, override)):
                await platform_runs.create(platform=platform, high_priority=False)
                count += 1
    return count
