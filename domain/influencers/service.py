"""Influencer I/O. Runs inside the caller's tenant transaction; never commits."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import Enum
from typing import Any

from tortoise.expressions import Q, Subquery

from domain.collection.models import FollowerSnapshot
from domain.entitlements import ensure_within
from domain.errors import FieldError, NotFound, ValidationFailed
from domain.influencers import rules
from domain.influencers.models import Influencer, InfluencerAccount
from domain.pagination import Page, check_first, decode_cursor, encode_cursor

HISTORY_LIMIT = 1000  # snapshots per account in one answer


class InfluencerSort(Enum):
    CREATED_DESC = ("created", "id", True)
    CREATED_ASC = ("created", "id", False)
    FOLLOWERS_DESC = ("followers", "total_followers", True)
    FOLLOWERS_ASC = ("followers", "total_followers", False)
    NAME_ASC = ("name", "display_name", False)
    NAME_DESC = ("name", "display_name", True)


@dataclass(frozen=True)
class InfluencerFilter:
    platform: str | None = None
    min_followers: int | None = None
    max_followers: int | None = None
    verified: bool | None = None
    category: str | None = None
    country: str | None = None
    search: str | None = None


class InfluencerService:
    async def get(self, influencer_id: int) -> Influencer:
        obj = await Influencer.get_or_none(id=influencer_id)
        if obj is None:
            raise NotFound("Influencer", influencer_id)
        return obj

    async def by_ids(self, ids: Sequence[int]) -> dict[int, Influencer]:
        return {i.id: i for i in await Influencer.filter(id__in=list(ids))}

    async def accounts_by_influencer(
        self, ids: Sequence[int]
    ) -> dict[int, list[InfluencerAccount]]:
        out: dict[int, list[InfluencerAccount]] = {i: [] for i in ids}
        rows = await InfluencerAccount.filter(influencer_id__in=list(ids)).order_by("id")
        for acc in rows:
            out[acc.influencer_id].append(acc)  # type: ignore[attr-defined]
        return out

    async def accounts_by_ids(self, ids: Sequence[int]) -> dict[int, InfluencerAccount]:
        return {a.id: a for a in await InfluencerAccount.filter(id__in=list(ids))}

    async def list(
        self,
        *,
        filters: InfluencerFilter,
        sort: InfluencerSort = InfluencerSort.CREATED_DESC,
        first: int | None = None,
        after: str | None = None,
    ) -> Page[Influencer]:
        limit = check_first(first)
        key, column, desc = sort.value
        query = Influencer.all()
        f = filters
        if f.min_followers is not None:
            query = query.filter(total_followers__gte=f.min_followers)
        if f.max_followers is not None:
            query = query.filter(total_followers__lte=f.max_followers)
        if f.category:
            query = query.filter(category__iexact=f.category)
        if f.country:
            query = query.filter(country__iexact=f.country)
        account_q = Q()
        if f.platform:
            account_q &= Q(platform=f.platform)
        if f.verified is not None:
            account_q &= Q(verified=f.verified)
        if f.platform or f.verified is not None:
            query = query.filter(
                id__in=Subquery(InfluencerAccount.filter(account_q).values("influencer_id"))
            )
        if f.search:
            term = f.search.strip()[:100]
            query = query.filter(
                Q(display_name__icontains=term)
                | Q(
                    id__in=Subquery(
                        InfluencerAccount.filter(handle__icontains=term).values("influencer_id")
                    )
                )
            )
        if after:
            value, ident = decode_cursor(after, key)
            if column != "id":
                op = "lt" if desc else "gt"
                after_value: dict[str, Any] = {f"{column}__{op}": value}
                tie: dict[str, Any] = {column: value, f"id__{op}": ident}
                query = query.filter(Q(**after_value) | Q(**tie))
            else:
                query = query.filter(**{f"id__{'lt' if desc else 'gt'}": ident})
        order = [f"-{column}" if desc else column]
        if column != "id":
            order.append("-id" if desc else "id")
        rows = await query.order_by(*order).limit(limit + 1)
        items = rows[:limit]
        cursors = [
            encode_cursor(key, getattr(i, column) if column != "id" else i.id, i.id) for i in items
        ]
        return Page(items, cursors, has_next_page=len(rows) > limit, has_previous_page=bool(after))

    async def count(self) -> int:
        return await Influencer.all().count()

    async def track(self, tenant_id: int, data: rules.InfluencerInput) -> Influencer:
        """Add an influencer within the plan's `tracked_influencers` (what addInfluencer
        does): the tenant row is locked until commit, so two concurrent additions cannot
        both take the last place. `add` itself does not check (seeding, benchmarks)."""
        await ensure_within(tenant_id, "tracked_influencers", await self.count())
        return await self.add(data)

    async def add(self, data: rules.InfluencerInput) -> Influencer:
        errors = rules.check_influencer(data)
        if errors:
            raise ValidationFailed(errors)
        accounts = [replace(a, handle=rules.normalize_handle(a.handle)) for a in data.accounts]
        await self._check_handles_free(accounts)
        influencer = await Influencer.create(
            display_name=data.display_name.strip(),
            category=data.category,
            country=data.country,
            notes=data.notes,
            total_followers=sum(a.followers for a in accounts),
        )
        for acc in accounts:
            await InfluencerAccount.create(
                influencer=influencer,
                platform=acc.platform,
                handle=acc.handle,
                external_id=acc.external_id,
                followers=acc.followers,
                verified=acc.verified,
                profile_url=acc.profile_url,
            )
        return influencer

    async def update(
        self,
        influencer_id: int,
        *,
        display_name: str | None = None,
        category: str | None = None,
        country: str | None = None,
        notes: str | None = None,
    ) -> Influencer:
        influencer = await Influencer.filter(id=influencer_id).select_for_update().first()
        if influencer is None:
            raise NotFound("Influencer", influencer_id)
        merged = rules.InfluencerInput(
            display_name=display_name if display_name is not None else influencer.display_name,
            category=category if category is not None else influencer.category,
            country=country if country is not None else influencer.country,
            notes=notes if notes is not None else influencer.notes,
        )
        errors = rules.check_influencer(merged)
        if errors:
            raise ValidationFailed(errors)
        influencer.display_name = merged.display_name.strip()
        influencer.category = merged.category
        influencer.country = merged.country
        influencer.notes = merged.notes
        await influencer.save()
        return influencer

    async def remove(self, influencer_id: int) -> int:
        deleted = await Influencer.filter(id=influencer_id).delete()
        if not deleted:
            raise NotFound("Influencer", influencer_id)
        return influencer_id

    async def _check_handles_free(self, accounts: Sequence[rules.AccountInput]) -> None:
        if not accounts:
            return
        q = Q()
        for a in accounts:
            q |= Q(platform=a.platform, handle=a.handle)
        taken = await InfluencerAccount.filter(q).values_list("platform", "handle")
        if taken:
            raise ValidationFailed(
                [FieldError("accounts", f"{p} account @{h} is already tracked") for p, h in taken]
            )

    async def follower_history(
        self, account_ids: Sequence[int], since: datetime | None
    ) -> dict[int, builtins.list[FollowerSnapshot]]:
        """Each account's follower snapshots since `since` (all when None), oldest first."""
        query = FollowerSnapshot.filter(account_id__in=list(account_ids))
        if since is not None:
            query = query.filter(taken_at__gte=since)
        out: dict[int, builtins.list[FollowerSnapshot]] = {a: [] for a in account_ids}
        for snap in await query.order_by("account_id", "taken_at", "id").limit(
            HISTORY_LIMIT * max(1, len(account_ids))
        ):
            bucket = out[snap.account_id]  # type: ignore[attr-defined]
            if len(bucket) < HISTORY_LIMIT:
                bucket.append(snap)
        return out


influencers = InfluencerService()
