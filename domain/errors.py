"""Expected failures of the business. They know nothing about HTTP or GraphQL.

The API maps each to a typed GraphQL error (see schema/errors.py).
"""

from __future__ import annotations

from dataclasses import dataclass


class DomainError(Exception):
    code = "DOMAIN_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(DomainError):
    code = "NOT_FOUND"

    def __init__(self, entity: str, ident: object) -> None:
        super().__init__(f"{entity} {ident} not found")
        self.entity = entity
        self.ident = ident


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


class ValidationFailed(DomainError):
    code = "VALIDATION_FAILED"

    def __init__(self, errors: list[FieldError] | FieldError) -> None:
        self.errors = [errors] if isinstance(errors, FieldError) else list(errors)
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in self.errors))


class Conflict(DomainError):
    code = "CONFLICT"


class AuthenticationFailed(DomainError):
    code = "UNAUTHENTICATED"


class PermissionDenied(DomainError):
    code = "FORBIDDEN"


class LimitReached(DomainError):
    code = "LIMIT_REACHED"

    def __init__(self, limit: str, allowed: int) -> None:
        super().__init__(f"limit {limit} reached ({allowed})")
        self.limit = limit
        self.allowed = allowed


class PlanLimitReached(DomainError):
    """The tenant's plan does not allow this (tenants/plans.py names the limits)."""

    code = "PLAN_LIMIT_REACHED"

    def __init__(self, limit: str, allowed: int | bool | None, plan: str) -> None:
        super().__init__(f"the {plan} plan's limit {limit} is reached ({allowed})")
        self.limit = limit
        self.allowed = allowed
        self.plan = plan


class RateLimited(DomainError):
    """Too many requests for this tenant, credential or client; retry after the given time."""

    code = "RATE_LIMITED"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TenantRestricted(DomainError):
    """The tenant is restricted to read-only: its subscription is unpaid past the grace
    period (docs/billing.md). Billing mutations still run; paying restores everything."""

    code = "TENANT_RESTRICTED"

    def __init__(self) -> None:
        super().__init__(
            "this tenant is read-only until its subscription is paid "
            "(createBillingPortalSession to update the payment method)"
        )
