"""The GraphQL roots: every context's queries, mutations and subscriptions merged.

The executable schema built from them (extensions, limits, error processing) is
`api.graphql.executable.schema`."""

from __future__ import annotations

import strawberry
from strawberry import relay
from strawberry.tools import merge_types

from schema.accounts.mutations import AccountMutations
from schema.accounts.queries import AccountQueries
from schema.analytics.queries import AnalyticsQueries
from schema.analytics.subscriptions import AnalyticsSubscriptions
from schema.apikeys.mutations import ApiKeyMutations
from schema.apikeys.queries import ApiKeyQueries
from schema.billing.mutations import BillingMutations
from schema.billing.queries import BillingQueries
from schema.collection.mutations import CollectionMutations
from schema.collection.queries import CollectionQueries
from schema.collection.subscriptions import CollectionSubscriptions
from schema.influencers.mutations import InfluencerMutations
from schema.influencers.queries import InfluencerQueries
from schema.insights.mutations import InsightMutations
from schema.insights.queries import InsightQueries
from schema.insights.subscriptions import InsightSubscriptions
from schema.members.mutations import MemberMutations
from schema.members.queries import MemberQueries
from schema.permissions import requires
from schema.posts.mutations import PostMutations
from schema.posts.queries import PostQueries
from schema.posts.subscriptions import PostSubscriptions
from schema.trends.queries import TrendQueries
from schema.trends.subscriptions import TrendSubscriptions
from schema.webhooks.mutations import WebhookMutations
from schema.webhooks.queries import WebhookQueries


@strawberry.type
class NodeQueries:
    node: relay.Node | None = relay.node(extensions=[requires("influencers:read")])


Query = merge_types(
    "Query",
    (
        NodeQueries,
        AccountQueries,
        InfluencerQueries,
        PostQueries,
        CollectionQueries,
        InsightQueries,
        AnalyticsQueries,
        BillingQueries,
        TrendQueries,
        MemberQueries,
        WebhookQueries,
        ApiKeyQueries,
    ),
)
Mutation = merge_types(
    "Mutation",
    (
        AccountMutations,
        InfluencerMutations,
        PostMutations,
        CollectionMutations,
        InsightMutations,
        BillingMutations,
        MemberMutations,
        WebhookMutations,
        ApiKeyMutations,
    ),
)
Subscription = merge_types(
    "Subscription",
    (
        PostSubscriptions,
        CollectionSubscriptions,
        InsightSubscriptions,
        AnalyticsSubscriptions,
        TrendSubscriptions,
    ),
)
