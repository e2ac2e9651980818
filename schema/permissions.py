"""Scope-based permissions: on root fields, `extensions=[requires("influencers:read")]`; on
object types, `TYPE_SCOPES`, enforced wherever an object of the type can appear.

A root field's scope alone would let a nested path or `node(id:)` read around it (a key with
only `influencers:read` reading post texts through `accounts { recentPosts }`), so each
tenant-data type declares the scope needed to see it, and `guard_scoped_types` enforces it once
the schema is built, derived from the schema itself, so that a new field returning a scoped
type is guarded without anyone remembering to:

- every field whose return type is a scoped object type checks the scope before resolving
  (once per call, not per list item); a field is left alone when its parent type or its own
  `requires(...)` already demands that scope, since the object could not be reached otherwise;
- every field returning an interface or union with scoped members (`node`) checks the
  concrete type of what it resolved;
- every `Node` type's `resolve_nodes` checks its scope before any lookup, and a `Node` type
  without a `TYPE_SCOPES` entry fails the schema build.

A refusal is the root fields' refusal: `FORBIDDEN` ("requires the <scope> scope"), or
`UNAUTHENTICATED` without a credential, at the field's path; a nullable field answers null, a
non-null one nulls its parent as GraphQL does. The check is one set lookup per field call,
decided from the type at build time (no per-request work).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import strawberry
from graphql import (
    GraphQLField,
    GraphQLFieldResolver,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLUnionType,
    default_field_resolver,
    get_named_type,
)
from strawberry.permission import BasePermission, PermissionExtension
from strawberry.types import Info

from domain.errors import AuthenticationFailed, DomainError, PermissionDenied


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


# Root fields that declare no scope, and why (tests/graphql/test_permission_matrix.py holds
# every other root field to a `requires(...)`).
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

_INFLUENCERS, _POSTS, _COLLECTION = "influencers:read", "posts:read", "collection:read"
_ANALYTICS, _MEMBERS, _AUDIT = "analytics:read", "members:manage", "audit:read"
_WEBHOOKS, _KEYS, _BILLING = "webhooks:manage", "apikeys:manage", "billing:manage"

# The scope needed to see an object of each type, wherever it appears (root field, nested
# field, `node(id:)`, a mutation's payload). Every `Node` type must be here; other types are
# listed when they hold a context's data (types reached only through one of these, like a
# Trend's series points, are covered by their parent). docs/members.md has the same table.
TYPE_SCOPES: dict[str, str] = {
    "Influencer": _INFLUENCERS,
    "InfluencerAccount": _INFLUENCERS,
    "FollowerSnapshot": _INFLUENCERS,
    "TenantTotals": _INFLUENCERS,
    "Post": _POSTS,
    "Comment": _POSTS,
    "CollectionTask": _COLLECTION,
    "PlatformConnection": _COLLECTION,
    "Insight": _ANALYTICS,
    "Anomaly": _ANALYTICS,
    "AlertRule": _ANALYTICS,
    "AlertEvent": _ANALYTICS,
    "Trend": _ANALYTICS,
    "TrendInfluencer": _ANALYTICS,
    "InfluencerMetrics": _ANALYTICS,
    "ScorePoint": _ANALYTICS,
    "Authenticity": _ANALYTICS,
    "SentimentReport": _ANALYTICS,
    "BestPostingTimes": _ANALYTICS,
    "Member": _MEMBERS,
    "Invitation": _MEMBERS,
    "AuditEntry": _AUDIT,
    "WebhookEndpoint": _WEBHOOKS,
    "WebhookDelivery": _WEBHOOKS,
    "WebhookEventType": _WEBHOOKS,
    "ApiKey": _KEYS,
    "PartnerApp": _KEYS,
    "BillingSubscription": _BILLING,
    "Invoice": _BILLING,
}


def refusal(principal: Any, scope: str) -> DomainError | None:
    """Why `principal` may not see what needs `scope`, or None. Domain errors: they keep
    their message and code (schema.errors.user_facing) and are not logged as incidents."""
    if principal is None or scope not in principal.scopes:
        return _denial(principal, scope)
    return None


def _denial(principal: Any, scope: str) -> DomainError:
    if principal is None:
        return AuthenticationFailed("authentication required")
    return PermissionDenied(f"requires the {scope} scope")


def _field_scope(field: GraphQLField) -> str | None:
    """The scope the field's own `requires(...)` demands, if any."""
    definition = field.extensions.get("strawberry-definition")
    for ext in getattr(definition, "extensions", None) or ():
        if isinstance(ext, PermissionExtension):
            for permission in ext.permissions:
                if isinstance(permission, HasScope):
                    return permission.scope
    return None


def _guard(resolve: GraphQLFieldResolver, scope: str) -> GraphQLFieldResolver:
    def guarded(source: Any, info: GraphQLResolveInfo, **args: Any) -> Any:
        principal = info.context.principal
        if principal is None or scope not in principal.scopes:
            raise _denial(principal, scope)
        return resolve(source, info, **args)

    guarded.scope = scope  # type: ignore[attr-defined]  # read by the permission matrix
    return guarded


def _check_resolved(value: Any, info: GraphQLResolveInfo, scopes: dict[str, str]) -> Any:
    for item in value if isinstance(value, list) else (value,):
        definition = getattr(type(item), "__strawberry_definition__", None)
        scope = scopes.get(definition.name) if definition is not None else None
        if scope is not None:
            error = refusal(info.context.principal, scope)
            if error is not None:
                raise error
    return value


def _guard_abstract(resolve: GraphQLFieldResolver, scopes: dict[str, str]) -> GraphQLFieldResolver:
    def guarded(source: Any, info: GraphQLResolveInfo, **args: Any) -> Any:
        result = resolve(source, info, **args)
        if inspect.isawaitable(result):

            async def checked(awaitable: Awaitable[Any]) -> Any:
                return _check_resolved(await awaitable, info, scopes)

            return checked(result)
        return _check_resolved(result, info, scopes)

    guarded.scopes = scopes  # type: ignore[attr-defined]
    return guarded


def _guard_resolve_nodes(cls: type, scope: str) -> None:
    """Check `scope` in `cls.resolve_nodes`, before any lookup (so a refusal says nothing
    about whether the id exists)."""
    original: Callable[..., Any] = cls.resolve_nodes  # type: ignore[attr-defined]
    if getattr(original, "scope", None) is not None:
        return  # guarded already (the schema was built twice)

    def resolve_nodes(
        klass: type, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> Any:
        error = refusal(info.context.principal, scope)
        if error is not None:
            raise error
        return original(info=info, node_ids=node_ids, required=required)

    resolve_nodes.scope = scope  # type: ignore[attr-defined]
    setattr(cls, "resolve_nodes", classmethod(resolve_nodes))  # noqa: B010


def _with_connections(types: Iterable[Any]) -> dict[str, str]:
    """TYPE_SCOPES plus the Relay connection and edge types of scoped nodes (a connection
    of Influencer holds influencers: it needs their scope wherever it is returned)."""
    out = dict(TYPE_SCOPES)
    for t in types:
        if not isinstance(t, GraphQLObjectType) or set(t.fields) != {"edges", "pageInfo"}:
            continue
        edge = get_named_type(t.fields["edges"].type)
        node = edge.fields.get("node") if isinstance(edge, GraphQLObjectType) else None
        scope = TYPE_SCOPES.get(get_named_type(node.type).name) if node is not None else None
        if scope is not None:
            out[t.name] = out[edge.name] = scope  # type: ignore[union-attr]
    return out


def guard_scoped_types(schema: strawberry.Schema) -> None:
    """Enforce `TYPE_SCOPES` on the built schema (see the module's docstring)."""
    gs = schema._schema
    stale = sorted(set(TYPE_SCOPES) - set(gs.type_map))
    if stale:
        raise RuntimeError(f"TYPE_SCOPES names types the schema does not have: {stale}")
    node = gs.type_map.get("Node")
    assert isinstance(node, GraphQLInterfaceType)
    for node_type in gs.get_possible_types(node):
        scope = TYPE_SCOPES.get(node_type.name)
        if scope is None:
            raise RuntimeError(
                f"{node_type.name} implements Node but declares no scope: add it to "
                "schema.permissions.TYPE_SCOPES"
            )
        _guard_resolve_nodes(node_type.extensions["strawberry-definition"].origin, scope)
    scoped = _with_connections(gs.type_map.values())
    for parent in gs.type_map.values():
        if not isinstance(parent, GraphQLObjectType) or parent.name.startswith("__"):
            continue
        parent_scope = scoped.get(parent.name)
        for field in parent.fields.values():
            resolve = field.resolve or default_field_resolver
            if getattr(resolve, "scope", None) or getattr(resolve, "scopes", None):
                continue  # guarded already
            target = get_named_type(field.type)
            if isinstance(target, GraphQLObjectType):
                scope = scoped.get(target.name)
                if scope is not None and scope not in (parent_scope, _field_scope(field)):
                    field.resolve = _guard(resolve, scope)
            elif isinstance(target, GraphQLInterfaceType | GraphQLUnionType):
                scopes = {
                    t.name: TYPE_SCOPES[t.name]
                    for t in gs.get_possible_types(target)
                    if t.name in TYPE_SCOPES
                }
                if scopes:
                    field.resolve = _guard_abstract(resolve, scopes)
