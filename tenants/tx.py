"""The tenant transaction: the one way code touches a tenant's tables.

`tenant_tx(schema)` opens a Tortoise transaction (which binds the connection into Tortoise's
contextvar, so plain `Model.filter()` uses it) and runs `SET LOCAL search_path TO <schema>,
public`. The setting dies with the transaction, which is what keeps it correct behind PgBouncer
in transaction mode (see docs/tenancy.md). Never use session-level `SET`.

Work that must happen only once the data is durable (publishing events, enqueueing jobs) is
registered with `on_commit()` and runs after COMMIT; a rollback drops it. Code above this
module registers it through the outbox (tenants/outbox.py).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import asyncpg
import structlog
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

log = structlog.get_logger(__name__)

SCHEMA_RE = re.compile(r"^t_[a-z0-9_]{1,50}$")
PUBLIC = "public"

AfterCommit = Callable[[], Awaitable[object]]


class InvalidSchemaName(ValueError):
    pass


def validate_schema_name(schema: str) -> str:
    if not SCHEMA_RE.fullmatch(schema):
        raise InvalidSchemaName(f"invalid tenant schema name: {schema!r}")
    return schema


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class TxMark:
    after_commit: int
    before_commit: int
    buffers: dict[str, int]


@dataclass
class TenantTx:
    """The open transaction: its schema (None for public-only work) and connection."""

    schema: str | None
    conn: BaseDBAsyncClient
    after_commit: list[AfterCommit] = field(default_factory=list)
    before_commit: list[AfterCommit] = field(default_factory=list)
    rollback_only: bool = False
    # Per-transaction buffers (lists or insertion-ordered dicts) of registered work, e.g. the
    # webhook fan-out or the outbox's message ids; a savepoint's rollback cuts them back.
    buffers: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def id(self) -> str:
        """A random id of this transaction, made on first use (the outbox derives the ids of
        messages that have no natural key from it)."""
        return uuid.uuid4().hex

    def on_commit(self, fn: AfterCommit) -> None:
        self.after_commit.append(fn)

    def on_before_commit(self, fn: AfterCommit) -> None:
        """Run `fn` inside the transaction, just before COMMIT (skipped on rollback); what it
        writes commits with the rest, and if it fails the whole transaction rolls back."""
        self.before_commit.append(fn)

    def mark(self) -> TxMark:
        """Where the registered work stands now, to undo what a savepoint rolled back."""
        return TxMark(
            len(self.after_commit),
            len(self.before_commit),
            {k: len(v) for k, v in self.buffers.items() if isinstance(v, list | dict)},
        )

    def rollback_to(self, mark: TxMark) -> None:
        """Forget the work registered since `mark` (its savepoint was rolled back): events
        and jobs of writes that never commit must not go out either."""
        del self.after_commit[mark.after_commit :]
        del self.before_commit[mark.before_commit :]
        for key in list(self.buffers):
            if key not in mark.buffers:
                del self.buffers[key]  # created since: its flush hook went with before_commit
            elif isinstance(self.buffers[key], dict):
                for added in list(self.buffers[key])[mark.buffers[key] :]:
                    del self.buffers[key][added]
            else:
                del self.buffers[key][mark.buffers[key] :]

    async def run_before_commit(self) -> None:
        while self.before_commit:
            await self.before_commit.pop(0)()

    def set_rollback(self) -> None:
        """Roll back at the end of the block instead of committing (no exception needed)."""
        self.rollback_only = True

    def raw_connection(self) -> AbstractAsyncContextManager[asyncpg.Connection]:
        """The transaction's asyncpg connection, for what Tortoise cannot do (COPY).

        It is the same connection and transaction, so `SET LOCAL search_path` applies."""
        return self.conn.acquire_connection()  # type: ignore[no-any-return]


# Extra `SET LOCAL`s sent with each transaction's search_path, in the same round trip. Set by
# `tenants.db.init_db` behind PgBouncer, where connections cannot carry the server-side
# timeouts as startup parameters.
_local_settings = ""


def set_local_settings(settings: dict[str, str]) -> None:
    global _local_settings
    _local_settings = "".join(
        f"; SET LOCAL {name} = {int(value)}" for name, value in settings.items()
    )


_current: ContextVar[TenantTx | None] = ContextVar("trendscope_tenant_tx", default=None)


class _Rollback(Exception):
    pass


def current_tx() -> TenantTx:
    tx = _current.get()
    if tx is None:
        raise RuntimeError("no tenant transaction is open")
    return tx


def current_tx_or_none() -> TenantTx | None:
    return _current.get()


def on_commit(fn: AfterCommit) -> None:
    """Run `fn` after the current transaction commits (dropped on rollback)."""
    current_tx().on_commit(fn)


@asynccontextmanager
async def _tx(schema: str | None) -> AsyncIterator[TenantTx]:
    current = _current.get()
    if current is not None:
        # Public tables are schema-qualified, so public work may join any open transaction.
        if schema is not None and current.schema != schema:
            raise RuntimeError(
                f"a transaction for {current.schema!r} is open; cannot enter {schema!r}"
            )
        yield current  # re-entrant: same schema, same transaction
        return
    search_path = f"{quote_ident(schema)}, public" if schema else "public"
    tx: TenantTx | None = None
    try:
        async with in_transaction() as conn:
            await conn.execute_script(f"SET LOCAL search_path TO {search_path}{_local_settings}")
            tx = TenantTx(schema=schema, conn=conn)
            token = _current.set(tx)
            try:
                yield tx
                if not tx.rollback_only:
                    await tx.run_before_commit()
            finally:
                _current.reset(token)
            if tx.rollback_only:
                raise _Rollback
    except _Rollback:
        return
    for fn in tx.after_commit:
        try:
            await fn()
        except Exception:  # after-commit work must never undo or hide a committed write
            log.exception("after_commit_failed", schema=schema)


def tenant_tx(schema: str) -> AbstractAsyncContextManager[TenantTx]:
    """`async with tenant_tx("t_acme") as tx:` — a transaction bound to one tenant schema."""
    return _tx(validate_schema_name(schema))


def public_tx() -> AbstractAsyncContextManager[TenantTx]:
    """A transaction that sees only the public schema (accounts, tenants registry)."""
    return _tx(None)
