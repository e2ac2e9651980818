"""Seeding the demo tenant and replaying new posts through the import path."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

from core.settings import Settings
from domain.accounts import tokens
from domain.accounts.models import Membership, User
from domain.accounts.service import auth
from domain.collection.models import CollectionTask
from domain.collection.service import collection_tasks
from domain.demo.rules import SeedInfluencer, generate_posts, load_seed_influencers
from domain.influencers.models import Influencer
from domain.influencers.rules import AccountInput, InfluencerInput
from domain.influencers.service import influencers
from tenants.models import Tenant
from tenants.registry import get_tenant_by_slug, schema_for_slug
from tenants.tx import public_tx, tenant_tx

DEMO_SLUG = "demo"
DEMO_EMAIL = "demo@trendscope.example"
DEMO_PASSWORD = "demo-password-123"  # documented in the README: a local demo only
DEMO_TOKEN_TTL = 24 * 3600
HISTORY_POSTS = 5
DEMO_PLAN = "pro"


def _jsonl(rows: list[dict[str, object]]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


class DemoService:
    async def seed(self, settings: Settings) -> bool:
        """Create the demo tenant with its owner, the seed influencers and some history.
        Returns False when it already existed (seeding is idempotent)."""
        if await get_tenant_by_slug(DEMO_SLUG) is not None:
            return False
        await auth.sign_up(
            settings,
            email=DEMO_EMAIL,
            password=DEMO_PASSWORD,
            display_name="Demo Owner",
            tenant_name="Demo Agency",
            tenant_slug=DEMO_SLUG,
        )
        # The demo shows everything: Pro (its ~60 seed influencers are beyond Free's 5, and the
        # walkthrough adds more). tenants/plans.py
        async with public_tx():
            await Tenant.filter(slug=DEMO_SLUG).update(plan=DEMO_PLAN)
        seeds = load_seed_influencers()
        rng = random.Random(2022)
        start = datetime.now(UTC) - timedelta(days=10)
        history: list[dict[str, object]] = []
        async with tenant_tx(schema_for_slug(DEMO_SLUG)):
            for seed in seeds:
                await influencers.add(self._input(seed))
                history += generate_posts(seed, start=start, count=HISTORY_POSTS, seq=0, rng=rng)
            await collection_tasks.create_import(
                filename="demo-history.jsonl", content=_jsonl(history), max_bytes=50_000_000
            )
        return True

    async def replay_once(self, rng: random.Random, *, accounts_per_tick: int = 3) -> int:
        """Import a few new posts for random demo accounts (a small JSONL file, the same path
        a user's upload takes). Returns the number of rows."""
        seeds = load_seed_influencers()
        picked = rng.sample(seeds, k=min(accounts_per_tick, len(seeds)))
        now = datetime.now(UTC)
        rows: list[dict[str, object]] = []
        for seed in picked:
            seq = int(now.timestamp() * 1000) % 10**12 + rng.randrange(1000)
            rows += generate_posts(
                seed, start=now - timedelta(minutes=5), count=1, seq=seq, rng=rng
            )
        async with tenant_tx(schema_for_slug(DEMO_SLUG)):
            await collection_tasks.create_import(
                filename="demo-replay.jsonl", content=_jsonl(rows), max_bytes=1_000_000
            )
        return len(rows)

    async def owner_token(self, settings: Settings, ttl_seconds: int = DEMO_TOKEN_TTL) -> str:
        async with public_tx():
            user = await User.get(email=DEMO_EMAIL)
            membership = (
                await Membership.filter(user=user, tenant__slug=DEMO_SLUG)
                .prefetch_related("tenant")
                .get()
            )
        token, _ = tokens.issue_access_token(
            secret=settings.secret_key,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            ttl_seconds=ttl_seconds,
            user_id=user.id,
            tenant_id=membership.tenant.id,
            tenant_schema=membership.tenant.schema_name,
            role=membership.role,
        )
        return token

    async def pending_tasks(self) -> int:
        async with tenant_tx(schema_for_slug(DEMO_SLUG)):
            return await CollectionTask.filter(status__in=["pending", "running"]).count()

    async def influencer_count(self) -> int:
        async with tenant_tx(schema_for_slug(DEMO_SLUG)):
            return await Influencer.all().count()

    @staticmethod
    def _input(seed: SeedInfluencer) -> InfluencerInput:
        return InfluencerInput(
            display_name=seed.display_name,
            category=seed.category,
            country=seed.country,
            accounts=(
                AccountInput(
                    platform=seed.platform,
                    handle=seed.handle,
                    followers=seed.followers,
                    verified=True,
                    profile_url=seed.profile_url,
                ),
            ),
        )


demo = DemoService()
