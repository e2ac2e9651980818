"""Every cron the ARQ worker registers, checked against a table written out here by hand: its
name, its schedule and the function it runs. The table is independent of jobs/ on purpose:
deleting a cron (say the one that requeues lost billing events, or dunning), moving it to
another hour or pointing it at another function must fail this test. It reads only what
`trendscope worker` hands to ARQ (`worker_settings()["cron_jobs"]`), not how jobs/ builds
that list, so it survives a change in how jobs are declared."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from jobs.analytics import schedule_analysis, schedule_scores
from jobs.billing import apply_retention, enforce_dunning, requeue_events
from jobs.collection import requeue_stale, schedule_collections
from jobs.insights import schedule_daily_digests, schedule_hourly_checks
from jobs.trends import schedule_trend_detection
from jobs.webhooks import requeue_due
from jobs.worker import worker_settings
from tests.conftest import Services

QUARTERS = {0, 15, 30, 45}


def when(
    *,
    second: Any = None,
    minute: Any = None,
    hour: Any = None,
    day: Any = None,
    weekday: Any = None,
    month: Any = None,
) -> dict[str, Any]:
    """A cron's schedule as ARQ keeps it (None: every value of that field)."""
    return {
        "month": month,
        "day": day,
        "weekday": weekday,
        "hour": hour,
        "minute": minute,
        "second": second,
    }


# name: (function, schedule, run at the worker's start-up, timeout in seconds or None)
EXPECTED: dict[str, tuple[Callable[..., Any], dict[str, Any], bool, float | None]] = {
    # every minute: billing events whose job was lost go back on the queue
    "billing.requeue_events": (requeue_events, when(second=15), False, None),
    # every quarter of an hour: tenants past their grace period become read-only
    "billing.enforce_dunning": (enforce_dunning, when(minute=QUARTERS, second=45), False, None),
    # nightly: data past the plan's retention is deleted
    "billing.apply_retention": (apply_retention, when(hour=3, minute=20, second=0), False, 3600),
    # every minute (and at start-up): collection tasks whose job was lost are requeued
    "collection.requeue_stale": (requeue_stale, when(second=0), True, None),
    # hourly: every due account's collection
    "collection.schedule": (schedule_collections, when(minute=5, second=30), False, None),
    # daily: every tenant's digest of the day before
    "insights.schedule_daily": (
        schedule_daily_digests,
        when(hour=0, minute=15, second=0),
        False,
        None,
    ),
    # hourly: anomalies and alert rules of every tenant
    "insights.schedule_hourly": (schedule_hourly_checks, when(minute=20, second=0), False, None),
    # hourly: the analysis pass of every tenant
    "analytics.schedule_hourly": (schedule_analysis, when(minute=20, second=0), False, None),
    # daily: every influencer's scores
    "analytics.schedule_daily": (schedule_scores, when(hour=3, minute=40, second=0), False, None),
    # hourly: trend detection of every tenant
    "analytics.schedule_trends": (
        schedule_trend_detection,
        when(minute=15, second=0),
        False,
        None,
    ),
    # every minute (and at start-up): webhook deliveries whose retry is due
    "webhooks.requeue_due": (requeue_due, when(second=15), True, None),
}


def test_the_worker_registers_every_cron_on_its_schedule(services: Services) -> None:
    crons = worker_settings()["cron_jobs"]
    names = [c.name for c in crons]
    assert len(names) == len(set(names)), f"a cron registered twice: {sorted(names)}"
    assert sorted(names) == sorted(EXPECTED), "the worker's crons differ from the table"
    for c in crons:
        fn, schedule, at_startup, timeout = EXPECTED[c.name]
        got = {field: getattr(c, field) for field in schedule}
        assert got == schedule, f"{c.name} runs at {got}, expected {schedule}"
        assert c.run_at_startup is at_startup, c.name
        assert c.timeout_s == timeout, c.name
        # the worker wraps each function (metrics, logging): the wrappers keep __wrapped__
        runs = inspect.unwrap(c.coroutine)
        assert runs is inspect.unwrap(fn), f"{c.name} runs {runs.__qualname__}, not {fn.__name__}"
