"""Scope-based permissions, declared on fields: `extensions=[requires("influencers:read")]`."""

from __future__ import annotations

from typing import Any

from strawberry.permission import BasePermission, PermissionExtension
from strawberry.types import Info


class HasScope(BasePermission):
    def __init__(self, scope: str) -> None:
        self.scope = scope
        self.message = f"requires the {scope} scope"

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        principal = info.context.principal
        if principal is None:
            self.message = "authentication required"
            self.error_extensions = {"code": "UNAUTHENTICATED"}
            return False
        if self.scope not in principal.scopes:
            self.message = f"requires the {self.scope} scope"
            self.error_extensions = {"code": "FORBIDDEN"}
            return False
        return True


def requires(scope: str) -> PermissionExtension:
    return PermissionExtension(permissions=[HasScope(scope)], fail_silently=False)


# Root fields that declare no scope, and why (tests/test_permission_matrix.py holds every other
# root field to a `requires(...)`).
PUBLIC_FIELDS: dict[str, str] = {
    "signUp": "creates a new account and tenant: the caller has no credential yet",
    "logIn": "exchanges a password for tokens: the caller has no credential yet",
    "refreshToken": "the refresh token is the credential (rotated, reuse revokes its family)",
    "acceptInvitation": "the invitation token is the credential; a signed-in caller must be "
    "its addressee",
    "viewer": "any signed-in caller, about themself only (the resolver refuses anonymous ones)",
    "signInProviders": "the sign-in page lists the configured providers before anyone signs in",
    "logOut": "the refresh token is the credential; it can only end its own family",
    "verifyEmail": "the e-mailed single-use token is the credential",
    "requestPasswordReset": "the caller cannot sign in; the answer is the same for any address",
    "resetPassword": "the e-mailed single-use token is the credential",
    "completeSignIn": "the one-time code from the provider callback is the credential",
    "requestEmailVerification": "any signed-in user, about their own address only",
    "linkIdentity": "any signed-in user, for their own account only",
    "completeIdentityLink": "any signed-in user who started the link (the code is bound to them)",
    "unlinkIdentity": "any signed-in user, for their own identities only",
}
