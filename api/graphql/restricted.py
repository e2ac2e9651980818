"""A restricted tenant (unpaid past its grace period, docs/billing.md) is read-only: every
mutation except the billing ones is answered with TENANT_RESTRICTED. Called by
`MutationTransaction` (api/graphql/transaction.py) before the mutation runs."""

from __future__ import annotations

from graphql import ExecutionResult, FieldNode, GraphQLError, OperationDefinitionNode
from strawberry.types import ExecutionContext

from domain.errors import TenantRestricted
from tenants.entitlements import is_restricted

# Mutations a restricted (read-only) tenant may still run: the way back to paying, and leaving.
ALLOWED_WHEN_RESTRICTED = frozenset(
    {"createCheckoutSession", "createBillingPortalSession", "logOut", "__typename"}
)


async def refuse_if_restricted(ec: ExecutionContext, mutation: OperationDefinitionNode) -> bool:
    """Set the refusal as the operation's result when the caller's tenant is restricted and
    `mutation` asks for more than the billing fields; True when it did."""
    principal = ec.context.principal
    if principal is None or ec.result is not None:
        return False
    fields = {  # response key (alias or name) -> field name
        (sel.alias or sel.name).value: sel.name.value
        for sel in mutation.selection_set.selections
        if isinstance(sel, FieldNode)
    }
    if set(fields.values()) <= ALLOWED_WHEN_RESTRICTED:
        return False
    if not await is_restricted(principal.tenant_id):
        return False
    exc = TenantRestricted()
    # An execution error (with a path, `data: null`), not a request error: the request was
    # valid, the tenant's state refused it.
    path = [next((k for k, name in fields.items() if name != "__typename"), "")]
    ec.result = ExecutionResult(
        data=None, errors=[GraphQLError(exc.message, original_error=exc, path=path)]
    )
    return True
