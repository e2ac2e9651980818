"""`Loaders`: one request's (or one subscription event's) dataloaders, every context's in one
object (`info.context.loaders`). Each context declares its own in schema/<ctx>/loaders.py; the
shared pieces are in schema/loading.py."""

from __future__ import annotations

from schema.analytics.loaders import AnalyticsLoaders
from schema.collection.loaders import CollectionLoaders
from schema.influencers.loaders import InfluencerLoaders
from schema.insights.loaders import InsightLoaders
from schema.posts.loaders import PostLoaders
from schema.trends.loaders import TrendLoaders


class Loaders(
    InfluencerLoaders,
    PostLoaders,
    CollectionLoaders,
    AnalyticsLoaders,
    TrendLoaders,
    InsightLoaders,
):
    def __init__(self, tenant_schema: str | None, *, cache: bool = True) -> None:
        InfluencerLoaders.__init__(self, tenant_schema, cache=cache)
        PostLoaders.__init__(self, tenant_schema, cache=cache)
        CollectionLoaders.__init__(self, tenant_schema, cache=cache)
        AnalyticsLoaders.__init__(self, tenant_schema, cache=cache)
        TrendLoaders.__init__(self, tenant_schema, cache=cache)
        InsightLoaders.__init__(self, tenant_schema, cache=cache)
