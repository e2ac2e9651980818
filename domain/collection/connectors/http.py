"""The one HTTP layer every connector uses: quota, retries, and mapping failures to typed errors.

Per attempt: take the call's cost from the credential's Redis token bucket (each attempt is a
call the platform counts, failed ones included), send it with httpx, classify the response:

- 429 and 5xx (and network errors) are retried with exponential backoff and full jitter
  (tenacity's `wait_random_exponential`), or after exactly the `Retry-After` the platform sent
  (seconds or an HTTP date), up to `max_attempts`; then `PlatformUnavailable` (5xx) or
  `QuotaExhausted` (429). A `Retry-After` longer than `max_retry_after` is not slept through:
  it raises at once so the job reschedules itself.
- 401/403 raise `CredentialBroken` (not retried).
- A connector's `classify` hook sees every response first and maps platform error bodies
  (Graph API error codes, YouTube reasons, ...) to the same typed errors.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import structlog
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from domain.collection.connectors.base import (
    CredentialBroken,
    PlatformRequestFailed,
    PlatformUnavailable,
    QuotaExhausted,
)
from domain.collection.connectors.quota import BucketSpec, QuotaLimiter

log = structlog.get_logger(__name__)

Sleep = Callable[[float], Awaitable[None]]


class Retryable(Exception):
    """A failure worth another attempt (429, 5xx, network). Classifiers may return one."""

    def __init__(self, status: int | None, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


Classify = Callable[[httpx.Response], Exception | None]


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay: float = 1.0  # the first backoff window; it doubles per attempt
    max_delay: float = 60.0  # the widest backoff window
    max_retry_after: float = 120.0  # longer Retry-After values reschedule instead of sleeping


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP-date (RFC 9110).
    None when absent or unreadable; never negative."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isdigit():
        return float(int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    delta = (when - (now or datetime.now(UTC))).total_seconds()
    return max(0.0, delta)


def default_classify(platform: str, response: httpx.Response) -> Exception | None:
    status = response.status_code
    if status == 429 or status >= 500:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return Retryable(status, f"HTTP {status}", retry_after)
    if status in (401, 403):
        return CredentialBroken(platform, f"HTTP {status}: {_snippet(response)}", status=status)
    if status >= 400:
        return PlatformRequestFailed(
            platform, f"HTTP {status}: {_snippet(response)}", status=status
        )
    return None


def _snippet(response: httpx.Response) -> str:
    try:
        return response.text[:300]
    except (UnicodeDecodeError, httpx.ResponseNotRead):
        return ""


class PlatformHttp:
    """One credential's HTTP access to one platform (shared httpx client, Redis buckets)."""

    def __init__(
        self,
        platform: str,
        credential_id: str,
        client: httpx.AsyncClient,
        *,
        limiter: QuotaLimiter | None,
        buckets: Mapping[str, BucketSpec],
        policy: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.platform = platform
        self.credential_id = str(credential_id)
        self.client = client
        self.limiter = limiter
        self.buckets = dict(buckets)
        self.policy = policy or RetryPolicy()
        self.sleep = sleep
        self.units_spent = 0
        self._backoff = wait_random_exponential(
            multiplier=self.policy.base_delay, max=self.policy.max_delay
        )

    async def request_json(
        self,
        method: str,
        url: str,
        *,
        bucket: str,
        cost: int = 1,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        classify: Classify | None = None,
    ) -> Any:
        """Send with retries; the decoded JSON body of the first successful attempt."""
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.policy.max_attempts),
            wait=self._wait,
            retry=retry_if_exception_type(Retryable),
            sleep=self.sleep,
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._attempt(
                        method, url, bucket, cost, params, json, data, headers, classify
                    )
        except Retryable as exc:  # every attempt used
            if exc.status == 429:
                raise QuotaExhausted(
                    self.platform,
                    exc.retry_after if exc.retry_after is not None else self.policy.max_delay,
                    f"still rate limited after {self.policy.max_attempts} attempts",
                ) from exc
            raise PlatformUnavailable(
                self.platform,
                f"{exc.message} after {self.policy.max_attempts} attempts",
                status=exc.status,
                retry_after=exc.retry_after,
            ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt(
        self,
        method: str,
        url: str,
        bucket: str,
        cost: int,
        params: Mapping[str, Any] | None,
        json: Any,
        data: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
        classify: Classify | None,
    ) -> Any:
        if self.limiter is not None and cost > 0:
            spec = self.buckets[bucket]
            await self.limiter.take(self.platform, self.credential_id, bucket, spec, cost)
        self.units_spent += cost
        try:
            response = await self.client.request(
                method, url, params=params, json=json, data=data, headers=headers
            )
        except httpx.TransportError as exc:
            raise Retryable(None, f"{type(exc).__name__}: {exc}") from exc
        error = (classify(response) if classify else None) or default_classify(
            self.platform, response
        )
        if isinstance(error, Retryable):
            if error.retry_after is not None and error.retry_after > self.policy.max_retry_after:
                if error.status == 429:
                    raise QuotaExhausted(self.platform, error.retry_after, error.message)
                raise PlatformUnavailable(
                    self.platform, error.message, status=error.status, retry_after=error.retry_after
                )
            raise error
        if error is not None:
            raise error
        try:
            return response.json()
        except ValueError as exc:
            raise Retryable(response.status_code, "the response body is not JSON") from exc

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, Retryable) and exc.retry_after is not None:
            return exc.retry_after
        return float(self._backoff(state))

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "connector.retry",
            platform=self.platform,
            credential_id=self.credential_id,
            attempt=state.attempt_number,
            error=str(exc),
            wait=state.next_action.sleep if state.next_action else None,
        )
