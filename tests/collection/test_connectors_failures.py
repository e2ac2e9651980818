"""Failures every connector shares through the one HTTP layer: 429 with Retry-After, 5xx,
network errors, 401 -- for each platform, against its recorded responses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from domain.collection.connectors import (
    DEFAULT_BUCKETS,
    BucketSpec,
    Connector,
    CredentialBroken,
    PlatformUnavailable,
    QuotaExhausted,
)
from domain.collection.connectors.http import parse_retry_after
from tests.collection.conftest import Kit, load, reply


@dataclass(frozen=True)
class Case:
    platform: str
    secrets: dict[str, str]
    base_url: str
    method: str
    path: str
    profile: Any
    bucket: str
    handle: str
    unauthorized: Any


CASES = [
    Case(
        "youtube",
        {"api_key": "k"},
        "https://yt.test/youtube/v3",
        "GET",
        "/youtube/v3/channels",
        load("youtube", "channels_handle"),
        "units",
        "mrbeast",
        load("youtube", "error_unauthorized"),
    ),
    Case(
        "instagram",
        {"access_token": "EAAG", "ig_user_id": "17841405309211844"},
        "https://graph.test/v25.0",
        "GET",
        "/v25.0/17841405309211844",
        load("instagram", "profile"),
        "calls",
        "bluebottle",
        {
            "error": {
                "message": "Invalid OAuth access token.",
                "type": "OAuthException",
                "code": 190,
            }
        },
    ),
    Case(
        "tiktok",
        {"access_token": "clt.example"},
        "https://tiktok.test",
        "POST",
        "/v2/research/user/info/",
        load("tiktok", "user_info"),
        "requests",
        "mrbeast",
        load("tiktok", "error_token"),
    ),
    Case(
        "x",
        {"bearer_token": "AAAA"},
        "https://x.test",
        "GET",
        "/2/users/by/username/XDevelopers",
        load("x", "user"),
        "users_by_username",
        "XDevelopers",
        load("x", "error_unauthorized"),
    ),
    Case(
        "apify",
        {"token": "apify_api_x"},
        "https://apify.test",
        "POST",
        "/v2/acts/apify~instagram-profile-scraper/run-sync-get-dataset-items",
        load("apify", "profile"),
        "requests",
        "leomessi",
        load("apify", "error_unauthorized"),
    ),
]
IDS = [c.platform for c in CASES]


def connector(kit: Kit, case: Case, **options: Any) -> Connector:
    return kit.connector(case.platform, case.secrets, base_url=case.base_url, **options)


async def spent(kit: Kit, case: Case) -> float:
    spec = DEFAULT_BUCKETS[case.platform][case.bucket]
    return spec.capacity - await kit.limiter.remaining(case.platform, "cred1", case.bucket, spec)


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_429_with_retry_after_seconds_then_success(kit: Kit, case: Case) -> None:
    kit.api.on(
        case.method,
        case.path,
        reply({"error": "slow down"}, 429, {"Retry-After": "7"}),
        reply(case.profile),
    )
    account = await connector(kit, case).fetch_profile(case.handle)
    assert account.followers > 0
    assert kit.sleeps == [7.0]  # exactly what the platform asked for
    assert len(kit.api.requests) == 2
    assert await spent(kit, case) == 2  # both attempts were calls the platform counts


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_500_then_success_backs_off_with_jitter(kit: Kit, case: Case) -> None:
    kit.api.on(
        case.method,
        case.path,
        reply({"error": "backend"}, 500),
        reply({"error": "backend"}, 503),
        reply(case.profile),
    )
    account = await connector(kit, case).fetch_profile(case.handle)
    assert account.handle
    assert len(kit.sleeps) == 2
    # full jitter: uniform in [0, window], the window doubling from base_delay=1
    assert 0 <= kit.sleeps[0] <= 1.0 and 0 <= kit.sleeps[1] <= 2.0


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_401_is_credential_broken_and_not_retried(kit: Kit, case: Case) -> None:
    kit.api.on(case.method, case.path, reply(case.unauthorized, 401))
    with pytest.raises(CredentialBroken) as err:
        await connector(kit, case).fetch_profile(case.handle)
    assert err.value.platform in (case.platform, "instagram")
    assert len(kit.api.requests) == 1 and kit.sleeps == []


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_5xx_on_every_attempt_is_platform_unavailable(kit: Kit, case: Case) -> None:
    kit.api.on(case.method, case.path, reply({"error": "down"}, 502))
    with pytest.raises(PlatformUnavailable):
        await connector(kit, case).fetch_profile(case.handle)
    assert len(kit.api.requests) == 4  # RetryPolicy(max_attempts=4) in the kit
    assert len(kit.sleeps) == 3


async def test_long_retry_after_reschedules_instead_of_sleeping(kit: Kit) -> None:
    case = CASES[3]
    kit.api.on(
        case.method, case.path, reply({"title": "Too Many Requests"}, 429, {"Retry-After": "900"})
    )
    with pytest.raises(QuotaExhausted) as err:
        await connector(kit, case).fetch_profile(case.handle)
    assert err.value.retry_after == 900
    assert kit.sleeps == [] and len(kit.api.requests) == 1


async def test_503_with_a_long_retry_after_is_unavailable_with_that_delay(kit: Kit) -> None:
    case = CASES[2]
    kit.api.on(case.method, case.path, reply({}, 503, {"Retry-After": "3600"}))
    with pytest.raises(PlatformUnavailable) as err:
        await connector(kit, case).fetch_profile(case.handle)
    assert err.value.retry_after == 3600 and err.value.status == 503
    assert kit.sleeps == [] and len(kit.api.requests) == 1


async def test_429_on_every_attempt_is_quota_exhausted(kit: Kit) -> None:
    case = CASES[0]
    kit.api.on(case.method, case.path, reply({"error": "busy"}, 429, {"Retry-After": "3"}))
    with pytest.raises(QuotaExhausted) as err:
        await connector(kit, case).fetch_profile(case.handle)
    assert err.value.retry_after == 3
    assert kit.sleeps == [3.0, 3.0, 3.0]


async def test_network_error_is_retried(kit: Kit) -> None:
    case = CASES[0]
    attempts = {"n": 0}

    def flaky(request: httpx.Request) -> httpx.Response:
        attempts["n"] += 1
        if attempts["n"] == 1:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(200, json=case.profile)

    kit.api.on(case.method, case.path, flaky)
    account = await connector(kit, case).fetch_profile(case.handle)
    assert account.external_id and attempts["n"] == 2 and len(kit.sleeps) == 1


def test_parse_retry_after_seconds_and_http_date() -> None:
    now = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)
    assert parse_retry_after("120", now) == 120
    assert parse_retry_after(format_datetime(now + timedelta(seconds=90), usegmt=True), now) == 90
    assert parse_retry_after("Mon, 23 Nov 2026 17:00:00 GMT", now) == 0  # in the past
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None
    assert parse_retry_after("", now) is None


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_empty_bucket_raises_quota_exhausted_without_calling(kit: Kit, case: Case) -> None:
    kit.api.on(case.method, case.path, reply(case.profile))
    one_per_hour = {case.bucket: BucketSpec(1, 3600)}
    built = connector(kit, case, buckets=one_per_hour)
    await built.fetch_profile(case.handle)
    with pytest.raises(QuotaExhausted) as err:
        await built.fetch_profile(case.handle)
    assert err.value.retry_after == pytest.approx(3600)
    assert len(kit.api.requests) == 1  # the second call never left


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_every_connector_satisfies_the_protocol(kit: Kit, case: Case) -> None:
    built = connector(kit, case)
    assert isinstance(built, Connector)
    assert built.platform == case.platform
