"""The permission matrix's expectations, written out by hand from docs/members.md.

Deliberately NOT imported from the code under test (domain.accounts.rules, schema.permissions):
the matrix compares the running API against these, and `test_the_docs_state_these_tables`
holds docs/members.md to them, so code, docs and tests cannot drift apart silently.
"""

from __future__ import annotations

_VIEWER = {"influencers:read", "posts:read", "collection:read"}
_ANALYST = _VIEWER | {
    "influencers:write",
    "posts:write",
    "collection:write",
    "analytics:read",
    "analytics:write",
}
_ADMIN = _ANALYST | {
    "members:manage",
    "tenant:manage",
    "audit:read",
    "webhooks:manage",
    "apikeys:manage",
}
ROLE_SCOPES: dict[str, frozenset[str]] = {
    "viewer": frozenset(_VIEWER),
    "analyst": frozenset(_ANALYST),
    "admin": frozenset(_ADMIN),
    "owner": frozenset(_ADMIN | {"billing:manage"}),
}

# Every root field (Query, Mutation, Subscription) and the scope it needs.
FIELD_SCOPES: dict[str, list[str]] = {
    "influencers:read": ["node", "influencer", "influencers", "tenantTotals"],
    "influencers:write": ["addInfluencer", "updateInfluencer", "removeInfluencer"],
    "posts:read": ["posts", "postAdded"],
    "collection:read": [
        "collectionTask",
        "collectionTasks",
        "platformConnections",
        "collectionTaskUpdated",
        "platformConnectionBroken",
    ],
    "collection:write": ["importPosts", "startCollection"],
    "tenant:manage": ["connectPlatform", "disconnectPlatform", "startPlatformConnection"],
    "analytics:read": [
        "insights",
        "anomalies",
        "bestPostingTimes",
        "alertRules",
        "alertEvents",
        "sentiment",
        "trends",
        "trend",
        "alertTriggered",
        "insightCreated",
        "scoreUpdated",
        "trendUpdated",
    ],
    "analytics:write": ["createAlertRule", "updateAlertRule", "deleteAlertRule"],
    "billing:manage": [
        "subscription",
        "invoices",
        "createCheckoutSession",
        "createBillingPortalSession",
    ],
    "members:manage": [
        "members",
        "invitations",
        "inviteMember",
        "revokeInvitation",
        "changeMemberRole",
        "removeMember",
    ],
    "audit:read": ["auditLog"],
    "webhooks:manage": [
        "webhookEndpoints",
        "webhookDeliveries",
        "webhookEventTypes",
        "createWebhookEndpoint",
        "updateWebhookEndpoint",
        "deleteWebhookEndpoint",
        "redeliverWebhook",
    ],
    "apikeys:manage": [
        "apiKeys",
        "partnerApps",
        "createApiKey",
        "revokeApiKey",
        "createPartnerApp",
        "revokePartnerApp",
    ],
}

# Root fields without a scope (their credential is a token of their own, or they concern only
# the signed-in person).
PUBLIC_FIELDS: frozenset[str] = frozenset(
    {
        "signUp",
        "logIn",
        "refreshToken",
        "logOut",
        "acceptInvitation",
        "viewer",
        "signInProviders",
        "verifyEmail",
        "requestPasswordReset",
        "resetPassword",
        "completeSignIn",
        "requestEmailVerification",
        "linkIdentity",
        "completeIdentityLink",
        "unlinkIdentity",
    }
)

# The scope needed to see an object of each type, wherever it appears (a root field, any
# nested field, node(id:), a mutation's payload).
TYPE_SCOPES: dict[str, list[str]] = {
    "influencers:read": ["Influencer", "InfluencerAccount", "FollowerSnapshot", "TenantTotals"],
    "posts:read": ["Post", "Comment"],
    "collection:read": ["CollectionTask", "PlatformConnection"],
    "analytics:read": [
        "Insight",
        "Anomaly",
        "AlertRule",
        "AlertEvent",
        "Trend",
        "TrendInfluencer",
        "InfluencerMetrics",
        "ScorePoint",
        "Authenticity",
        "SentimentReport",
        "BestPostingTimes",
    ],
    "members:manage": ["Member", "Invitation"],
    "audit:read": ["AuditEntry"],
    "webhooks:manage": ["WebhookEndpoint", "WebhookDelivery", "WebhookEventType"],
    "apikeys:manage": ["ApiKey", "PartnerApp"],
    "billing:manage": ["BillingSubscription", "Invoice"],
}


def field_scope(name: str) -> str | None:
    return next((s for s, names in FIELD_SCOPES.items() if name in names), None)


def type_scope(name: str) -> str | None:
    return next((s for s, names in TYPE_SCOPES.items() if name in names), None)
