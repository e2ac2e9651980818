"""The on-demand ARQ jobs, declared where they are written: `@job(NAME, ...)`.

A job's name is written once, in the domain that enqueues it (e.g.
`domain.collection.service.IMPORT_JOB`, enqueued through `tenants.outbox.enqueue`); the
decorator registers the function under it, and `jobs/worker.py` builds ARQ's function list
from this registry. A job module must be imported by jobs/worker.py for its jobs to run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from core.settings import Settings

JobFn = Callable[..., Awaitable[Any]]
F = TypeVar("F", bound=JobFn)


@dataclass(frozen=True)
class JobSpec:
    name: str
    fn: JobFn
    # ARQ's tries for the job: a number, or one computed from the settings at start-up.
    max_tries: int | Callable[[Settings], int]
    timeout: int  # seconds

    def tries(self, settings: Settings) -> int:
        return self.max_tries if isinstance(self.max_tries, int) else self.max_tries(settings)


JOBS: dict[str, JobSpec] = {}


def job(name: str, *, max_tries: int | Callable[[Settings], int], timeout: int) -> Callable[[F], F]:
    """Register the decorated coroutine as the ARQ job `name` (the function is unchanged)."""

    def register(fn: F) -> F:
        known = JOBS.get(name)
        if known is not None and known.fn is not fn:
            raise RuntimeError(f"two jobs named {name!r}: {known.fn!r} and {fn!r}")
        JOBS[name] = JobSpec(name, fn, max_tries, timeout)
        return fn

    return register
