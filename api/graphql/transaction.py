"""`MutationTransaction`: each mutation runs inside one transaction of the caller's tenant."""

from __future__ import annotations

from collections.abc import AsyncIterator

from graphql import OperationDefinitionNode, OperationType
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext

from api.graphql.restricted import refuse_if_restricted
from tenants.tx import tenant_tx

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


class MutationTransaction(SchemaExtension):
    """Run each mutation inside `tenant_tx(<caller's tenant schema>)`; nothing else gets one.

    A mutation is atomic: its response is produced only after COMMIT, and an operation with
    any error rolls back, so a request never leaves a partial write. A query only reads: its
    root resolvers and dataloader batches each open a short `tenant_tx` of their own
    (`schema.loading.tenant_scope`), so no pool connection sits idle in a transaction
    while GraphQL completes the result (CPU-bound, several milliseconds for a large page).
    Subscriptions hold none either (each read opens a short one), and tenant-less operations
    (sign-up, log-in) get none.

    Before anything runs, the hook `refuse_if_restricted` (api/graphql/restricted.py) may answer
    the mutation instead (a read-only tenant): a hook, not an extension of its own, because it
    needs exactly this extension's "a tenant's mutation" decision, made once per request.
    """

    async def on_execute(self) -> AsyncIterator[None]:
        ec = self.execution_context
        tenant_schema = ec.context.tenant_schema
        if tenant_schema is None or ec.result is not None:
            yield  # no tenant, or already answered (a limit, the compiled path)
            return
        definition = tenant_operation(ec)
        if definition is None or definition.operation != OperationType.MUTATION:
            yield
            return
        async with tenant_tx(tenant_schema) as tx:
            if await refuse_if_restricted(ec, definition):
                yield  # the result is set: nothing executes
                tx.set_rollback()
                return
            yield
            result = ec.result
            if result is not None and result.errors:
                tx.set_rollback()


def tenant_operation(ec: ExecutionContext) -> OperationDefinitionNode | None:
    """The operation to run, or None when it needs no tenant (public root fields only)."""
    doc = ec.graphql_document
    if doc is None:
        return None
    name = ec.operation_name
    for definition in doc.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            continue
        if name and (definition.name is None or definition.name.value != name):
            continue
        fields = {  # a fragment spread counts as None: not public
            getattr(sel, "name", None) and sel.name.value  # type: ignore[attr-defined]
            for sel in definition.selection_set.selections
        }
        return None if fields <= PUBLIC_ROOT_FIELDS else definition
    return None
