"""Schema extensions: the tenant transaction around each operation, and error masking."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import orjson
import structlog
from graphql import (
    ExecutionResult,
    FieldNode,
    GraphQLError,
    GraphQLSyntaxError,
    OperationDefinitionNode,
    OperationType,
)
from strawberry.extensions import SchemaExtension

from domain.errors import TenantRestricted
from schema.compiled import compile_query
from schema.errors import user_facing
from schema.limits import coded_syntax_error, settings_of, without_suggestions
from tenants.entitlements import is_restricted
from tenants.tx import tenant_tx

log = structlog.get_logger(__name__)

# Mutations a restricted (read-only) tenant may still run: the way back to paying, and leaving.
ALLOWED_WHEN_RESTRICTED = frozenset(
    {"createCheckoutSession", "createBillingPortalSession", "logOut", "__typename"}
)
# Root fields that work without a tenant (they open their own transactions).
PUBLIC_ROOT_FIELDS = frozenset(
    {
        "signUp",
        "logIn",
        "refreshToken",
        "logOut",
        "verifyEmail",
        "requestPasswordReset",
        "resetPassword",
        "completeSignIn",
        "__typename",
    }
)


class TenantTransaction(SchemaExtension):
    """Run each mutation inside `tenant_tx(<caller's schema>)`; queries hold no transaction.

    A mutation is atomic: its response is produced only after COMMIT, and an operation with
    any error rolls back, so a request never leaves a partial write. A query only reads: its
    root resolvers and dataloader batches each open a short `tenant_tx` of their own
    (`schema.loading.tenant_scope`), so no pool connection sits idle in a transaction
    while GraphQL completes the result (CPU-bound, several milliseconds for a large page).
    Subscriptions hold none either (each read opens a short one), and tenant-less operations
    (sign-up, log-in) get none.

    A query in the compiled subset (`schema.compiled`) is answered here, before graphql-core
    would execute it, with one statement in a short `tenant_tx` that returns the JSON.
    """

    async def on_execute(self) -> AsyncIterator[None]:
        ctx = self.execution_context.context
        schema = ctx.tenant_schema
        operation = self._operation()
        if schema is None or operation != OperationType.MUTATION:
            if schema is not None and operation == OperationType.QUERY and self.compiled:
                await self._run_compiled(schema)
            yield
            return
        async with tenant_tx(schema) as tx:
            if await self._refused_as_restricted():
                yield  # the result is set: nothing executes
                tx.set_rollback()
                return
            yield
            result = self.execution_context.result
            if result is not None and result.errors:
                tx.set_rollback()

    async def _refused_as_restricted(self) -> bool:
        """A restricted tenant (unpaid past its grace period, docs/billing.md) is read-only:
        every mutation except the billing ones is answered with TENANT_RESTRICTED."""
        ec = self.execution_context
        principal = ec.context.principal
        if principal is None or ec.result is not None:
            return False
        fields = self._root_fields()
        if set(fields.values()) <= ALLOWED_WHEN_RESTRICTED:
            return False
        if not await is_restricted(principal.tenant_id):
            return False
        exc = TenantRestricted()
        # An execution error (with a path, `data: null`), not a request error: the request
        # was valid, the tenant's state refused it.
        path = [next((k for k, name in fields.items() if name != "__typename"), "")]
        ec.result = ExecutionResult(
            data=None, errors=[GraphQLError(exc.message, original_error=exc, path=path)]
        )
        return True

    def _root_fields(self) -> dict[str, str]:
        """The operation's root fields: response key (alias or name) -> field name."""
        doc = self.execution_context.graphql_document
        name = self.execution_context.operation_name
        for definition in doc.definitions if doc is not None else ():
            if not isinstance(definition, OperationDefinitionNode):
                continue
            if name and (definition.name is None or definition.name.value != name):
                continue
            return {
                (sel.alias or sel.name).value: sel.name.value
                for sel in definition.selection_set.selections
                if isinstance(sel, FieldNode)
            }
        return {}

    compiled = True  # serve queries of the compiled subset with one statement (schema.compiled)

    async def _run_compiled(self, schema: str) -> None:
        """Answer a query of the compiled subset with one SQL statement: setting the result
        here makes Strawberry skip graphql-core's execution."""
        ec = self.execution_context
        if ec.result is not None:  # another extension answered already (e.g. a limit)
            return
        plan = compile_query(ec.query, ec.operation_name, ec.graphql_document)
        if plan is None:
            return
        principal = ec.context.principal
        if principal is None or not plan.scopes <= principal.scopes:
            return  # the resolvers' permission checks answer
        params = plan.parameters(ec.variables or {})
        if params is None:
            return
        async with tenant_tx(schema) as tx:
            _, rows = await tx.conn.execute_query(plan.sql, params)
        ec.result = ExecutionResult(data={plan.root_key: orjson.loads(rows[0][0])})

    def _operation(self) -> OperationType | None:
        """The operation's type, or None when it needs no tenant (public root fields only)."""
        doc = self.execution_context.graphql_document
        if doc is None:
            return None
        name = self.execution_context.operation_name
        for definition in doc.definitions:
            if not isinstance(definition, OperationDefinitionNode):
                continue
            if name and (definition.name is None or definition.name.value != name):
                continue
            fields = {
                getattr(sel, "name", None) and sel.name.value  # type: ignore[attr-defined]
                for sel in definition.selection_set.selections
            }
            return None if fields <= PUBLIC_ROOT_FIELDS else definition.operation
        return None


class MaskUnexpectedErrors(SchemaExtension):
    """Domain errors keep their message and code; anything unexpected is logged and masked.
    Where the settings turn suggestions off (production), "Did you mean ...?" is cut."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        errors = getattr(result, "errors", None)
        if not errors or result is None:
            return
        ctx = self.execution_context.context
        request_id = getattr(ctx, "request_id", "-")
        suggestions = settings_of(ctx).suggestions_enabled
        limits = settings_of(ctx).limits
        shown: list[GraphQLError] = []
        for error in errors:
            if isinstance(error, GraphQLSyntaxError):
                error = coded_syntax_error(error, limits)
            visible = user_facing(error)
            if visible is None:
                log.error(
                    "unexpected_error",
                    request_id=request_id,
                    path=error.path,
                    exc_info=error.original_error,
                )
                visible = GraphQLError(
                    f"Unexpected error (request id {request_id}).",
                    nodes=error.nodes,
                    source=error.source,
                    positions=error.positions,
                    path=error.path,
                    extensions={"code": "INTERNAL_SERVER_ERROR", "requestId": request_id},
                )
            shown.append(visible if suggestions else without_suggestions(visible))
        result.errors = shown
