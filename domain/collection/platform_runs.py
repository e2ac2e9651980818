"""Platform runs: collection tasks that fetch an influencer's (or every tracked) account from
one platform, step by step (`platform_runs`; file imports and the task list are in service.py).

A task's `cursor` holds where it is: which account (`i` into the account ids fixed when the
task began), which phase (profile -> posts -> comments), and the connector's opaque page
cursor. Every step is: fetch from the platform (no transaction held), then, in one
transaction under the task's row lock, check the cursor is still the one the step started from,
write the rows, advance the cursor. A killed worker therefore resumes at the first step not
committed, and two runs of one task can never both apply a step. Runs in the caller's tenant
transaction; never commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from tortoise.expressions import Q

from domain import events
from domain.collection.connectors import (
    SECRET_FIELDS,
    AccountData,
    AccountRef,
    CommentData,
    ItemError,
    Page,
    PostData,
)
from domain.collection.models import CollectionTask, FollowerSnapshot, PlatformConnection
from domain.collection.rules import MAX_ROW_ERRORS
from domain.collection.service import progressed, task_event
from domain.errors import FieldError, NotFound, ValidationFailed
from domain.influencers.models import Influencer, InfluencerAccount
from domain.posts.models import Post
from domain.posts.service import posts
from tenants import outbox
from tenants.tx import current_tx

COLLECT_JOB = "collection.collect"
COLLECT_PLATFORMS = ("instagram", "youtube", "tiktok", "x")
# A platform may also be collected through a scraper: used when its own API connection is absent.
SCRAPER_ROUTES: dict[str, tuple[str, ...]] = {"instagram": ("apify",)}


@dataclass(frozen=True)
class Step:
    """What the job must do next for a task, read from its cursor."""

    task: CollectionTask
    state: dict[str, Any]
    account: InfluencerAccount | None  # None: every account is done

    @property
    def phase(self) -> str:
        return str(self.state.get("phase", "profile"))


def _initial_state(account_ids: Sequence[int]) -> dict[str, Any]:
    return {"accounts": list(account_ids), "i": 0, "phase": "profile", "page": None}


def _next_account(state: dict[str, Any]) -> dict[str, Any]:
    return {"accounts": state["accounts"], "i": state["i"] + 1, "phase": "profile", "page": None}


class PlatformRunService:
    async def create(
        self,
        *,
        platform: str,
        influencer_id: int | None = None,
        since: datetime | None = None,
        high_priority: bool = True,
    ) -> CollectionTask:
        """A pending collect task, enqueued after commit. Needs an active connection."""

        if platform not in COLLECT_PLATFORMS:
            raise ValidationFailed(
                FieldError("platforms", f"must be among {', '.join(COLLECT_PLATFORMS)}")
            )
        sources = [platform, *SCRAPER_ROUTES.get(platform, ())]
        if not await PlatformConnection.filter(platform__in=sources, status="active").exists():
            raise ValidationFailed(
                FieldError(
                    "platforms",
                    f"no active connection for {platform} (any of {', '.join(sources)}): "
                    "connectPlatform first",
                )
            )
        if influencer_id is not None and not await Influencer.filter(id=influencer_id).exists():
            raise NotFound("Influencer", influencer_id)
        task = await CollectionTask.create(
            kind="collect",
            status="pending",
            platform=platform,
            influencer_id=influencer_id,
            params={"since": since.isoformat() if since else None},
            priority=1 if high_priority else 0,
        )
        schema = current_tx().schema
        assert schema is not None
        outbox.enqueue(COLLECT_JOB, schema, task.id, high_priority=high_priority)
        outbox.publish(events.COLLECTION_TASK_UPDATED, task_event(task))
        return task

    async def begin(self, task_id: int) -> CollectionTask | None:
        """Lock the task, mark it running, fix its account list on the first run."""
        task = await CollectionTask.filter(id=task_id).select_for_update().first()
        if task is None or task.kind != "collect" or task.status in ("succeeded", "failed"):
            return None
        if not task.cursor:
            query = InfluencerAccount.filter(platform=task.platform)
            if task.influencer_id is not None:
                query = query.filter(influencer_id=task.influencer_id)
            ids = cast(
                list[int],
                await query.filter(~Q(status="removed"))
                .order_by("id")
                .values_list("id", flat=True),
            )
            task.cursor = _initial_state([int(i) for i in ids])
            task.total = len(ids)
        task.status = "running"
        task.attempts += 1
        task.next_attempt_at = None  # type: ignore[assignment]
        task.started_at = task.started_at or datetime.now(UTC)
        await task.save()
        outbox.publish(events.COLLECTION_TASK_UPDATED, task_event(task))
        return task

    async def step(self, task_id: int) -> Step:
        task = await CollectionTask.get(id=task_id)
        state = dict(task.cursor)
        if state["i"] >= len(state["accounts"]):
            return Step(task, state, None)
        account = await InfluencerAccount.get_or_none(id=state["accounts"][state["i"]])
        if account is None:  # removed meanwhile: skip it
            return await self._advance_missing(task_id, state)
        return Step(task, state, account)

    async def _advance_missing(self, task_id: int, state: dict[str, Any]) -> Step:
        task = await self._locked(task_id, state)
        if task is not None:
            await self._save(task, _next_account(state))
        return await self.step(task_id)

    async def _locked(self, task_id: int, expected: dict[str, Any]) -> CollectionTask | None:
        """The task, locked, if its cursor is still `expected` (else another run moved it)."""
        task = await CollectionTask.filter(id=task_id).select_for_update().first()
        if task is None or task.cursor != expected or task.status != "running":
            return None
        return task

    async def _save(self, task: CollectionTask, state: dict[str, Any], units: int = 0) -> None:
        task.cursor = state
        task.processed = min(state["i"], len(state["accounts"]))
        task.units_spent += units
        progressed(task)
        await task.save()
        outbox.publish(events.COLLECTION_TASK_UPDATED, task_event(task))

    def _record_errors(self, task: CollectionTask, errors: Sequence[ItemError], where: str) -> None:
        room = MAX_ROW_ERRORS - len(task.errors)
        if room <= 0 or not errors:
            return
        task.errors = [
            *task.errors,
            *(
                {"row": None, "item": e.external_id, "message": f"{where}: {e.message}"}
                for e in errors[:room]
            ),
        ]
        task.skipped += len(errors)

    async def apply_profile(
        self, task_id: int, expected: dict[str, Any], data: AccountData, units: int = 0
    ) -> None:
        """Update the account, snapshot its followers (once per task), go on to its posts."""
        task = await self._locked(task_id, expected)
        if task is None:
            return
        account = await InfluencerAccount.get(id=expected["accounts"][expected["i"]])
        account.external_id = data.external_id
        account.followers = data.followers
        account.verified = data.verified
        account.profile_url = data.profile_url or account.profile_url
        account.status, account.status_reason = "active", None
        await account.save()
        await FollowerSnapshot.bulk_create(
            [
                FollowerSnapshot(
                    account_id=account.id,
                    followers=data.followers,
                    taken_at=datetime.now(UTC),
                    task_id=task.id,
                )
            ],
            on_conflict=["account_id", "task_id"],
            ignore_conflicts=True,
        )
        influencer_id: int = account.influencer_id  # type: ignore[attr-defined]
        followers = await InfluencerAccount.filter(influencer_id=influencer_id).values_list(
            "followers", flat=True
        )
        total = sum(cast(list[int], followers))
        await Influencer.filter(id=influencer_id).update(total_followers=total)
        await self._save(task, {**expected, "phase": "posts", "page": None}, units)

    async def apply_unavailable(
        self, task_id: int, expected: dict[str, Any], status: str, reason: str, units: int = 0
    ) -> None:
        """The platform will not serve this account (private, removed): record it, move on."""
        task = await self._locked(task_id, expected)
        if task is None:
            return
        await InfluencerAccount.filter(id=expected["accounts"][expected["i"]]).update(
            status=status, status_reason=reason[:200]
        )
        await self._save(task, _next_account(expected), units)

    async def apply_posts_page(
        self,
        task_id: int,
        expected: dict[str, Any],
        page: Page[PostData],
        comment_posts: int,
        units: int = 0,
    ) -> None:
        """Upsert one page of posts and store the page cursor with them; at the end of the
        listing, pick the recent posts whose comments come next."""
        task = await self._locked(task_id, expected)
        if task is None:
            return
        account = await InfluencerAccount.get(id=expected["accounts"][expected["i"]])
        # The account is known: a platform's spelling of the handle (case, '@') does not matter.
        rows = [
            replace(p.to_import_row(n), handle=account.handle) for n, p in enumerate(page.items)
        ]
        result = await posts.upsert_rows(rows)
        task.created += result.created
        task.updated += result.updated
        self._record_errors(task, page.errors, f"@{account.handle} posts")
        for post_id, influencer_id in result.created_posts:
            outbox.publish(events.POST_ADDED, {"id": post_id, "influencer_id": influencer_id})
        newest = max([p.published_at for p in page.items], default=None)
        seen = expected.get("newest")
        if newest is not None and (seen is None or newest.isoformat() > seen):
            seen = newest.isoformat()
        if page.next_cursor is not None:
            await self._save(
                task, {**expected, "page": page.next_cursor, "newest": seen}, page.units
            )
            return
        if seen is not None:
            account.collected_until = datetime.fromisoformat(seen)
            await account.save(update_fields=["collected_until"])
        recent = await self._recent_post_ids(account.id, comment_posts)
        state = {**expected, "phase": "comments", "page": None, "posts": recent, "p": 0}
        state.pop("newest", None)
        if not recent:
            state = _next_account(expected)
        await self._save(task, state, units)

    async def _recent_post_ids(self, account_id: int, limit: int) -> list[str]:
        from core.settings import get_settings

        if limit <= 0:
            return []
        cutoff = datetime.now(UTC) - timedelta(days=get_settings().collect_comment_days)
        ids = (
            await Post.filter(account_id=account_id, published_at__gte=cutoff)
            .order_by("-published_at", "-id")
            .limit(limit)
            .values_list("external_id", flat=True)
        )
        return [str(i) for i in ids]

    async def comment_target(self, account: InfluencerAccount, external_id: str) -> PostData:
        post = await Post.get(platform=account.platform, external_id=external_id)
        return PostData(
            platform=post.platform,
            external_id=post.external_id,
            handle=account.handle,
            published_at=post.published_at,
            url=post.url,
            account_external_id=account.external_id,
            raw=dict(post.raw_json or {}),
        )

    async def apply_comments_page(
        self,
        task_id: int,
        expected: dict[str, Any],
        page: Page[CommentData] | None,
        units: int = 0,
    ) -> None:
        """Upsert one page of one post's comments (None: the post's comments are closed)."""
        task = await self._locked(task_id, expected)
        if task is None:
            return
        if page is not None:
            result = await posts.upsert_comments(page.items)
            task.created += result.created
            task.updated += result.updated
            self._record_errors(task, page.errors, f"post {expected['posts'][expected['p']]}")
        if page is not None and page.next_cursor is not None:
            state = {**expected, "page": page.next_cursor}
        elif expected["p"] + 1 < len(expected["posts"]):
            state = {**expected, "p": expected["p"] + 1, "page": None}
        else:
            state = _next_account(expected)
        await self._save(task, state, units)

    async def fail(self, task_id: int, error: str) -> None:
        task = await CollectionTask.filter(id=task_id).select_for_update().first()
        if task is None or task.status in ("succeeded", "failed"):
            return
        task.status, task.error, task.finished_at = "failed", error[:2000], datetime.now(UTC)
        task.next_attempt_at = None  # type: ignore[assignment]
        await task.save()
        outbox.publish(events.COLLECTION_TASK_UPDATED, task_event(task))

    async def finish(self, task_id: int) -> CollectionTask:
        task = await CollectionTask.filter(id=task_id).select_for_update().first()
        if task is None:
            raise NotFound("CollectionTask", task_id)
        if task.status == "running":
            task.status, task.finished_at = "succeeded", datetime.now(UTC)
            task.processed = task.total
            task.next_attempt_at = None  # type: ignore[assignment]
            await task.save()
            outbox.publish(events.COLLECTION_TASK_UPDATED, task_event(task))
        return task

    async def due_platforms(self, interval: timedelta) -> list[str]:
        """Platforms with an active connection whose last collect task is older than
        `interval` (or that never had one): the per-tenant schedule."""
        cutoff = datetime.now(UTC) - interval
        due = []
        for platform in await PlatformConnection.filter(status="active").values_list(
            "platform", flat=True
        ):
            if platform not in COLLECT_PLATFORMS:
                continue
            recent = await CollectionTask.filter(
                kind="collect", platform=platform, influencer_id=None, created_at__gte=cutoff
            ).exists()
            if not recent:
                due.append(str(platform))
        return due


def account_ref(account: InfluencerAccount) -> AccountRef:
    return AccountRef(account.platform, account.handle, account.external_id)


assert set(COLLECT_PLATFORMS) <= set(SECRET_FIELDS)
platform_runs = PlatformRunService()
