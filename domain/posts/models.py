"""Posts and comments collected from the platforms (tenant schema)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.contrib.postgres.fields import ArrayField
from tortoise.models import Model

if TYPE_CHECKING:
    from domain.influencers.models import InfluencerAccount


class Post(Model):
    id = fields.BigIntField(primary_key=True)
    account: fields.ForeignKeyRelation[InfluencerAccount] = fields.ForeignKeyField(
        "tenant.InfluencerAccount", related_name="posts", on_delete=fields.CASCADE
    )
    # Denormalised from the account: posts are listed per influencer without a join.
    influencer_id = fields.BigIntField()  # indexed with published_at (Meta.indexes)
    platform = fields.CharField(max_length=16)
    external_id = fields.CharField(max_length=100)
    url = fields.CharField(max_length=1000, default="")
    text = fields.TextField(default="")
    hashtags = ArrayField(element_type="text", default=list)
    mentions = ArrayField(element_type="text", default=list)
    published_at = fields.DatetimeField(db_index=True)
    likes = fields.BigIntField(default=0)
    comments = fields.BigIntField(default=0)
    shares = fields.BigIntField(default=0)
    views = fields.BigIntField(default=0)
    raw_json: fields.JSONField[dict[str, Any]] = fields.JSONField(
        default=dict
    )  # the platform item as received
    collected_at = fields.DatetimeField(auto_now_add=True)
    # Filled by the analytics pass (domain/analytics, jobs/actors.py); NULL until analysed.
    language = fields.CharField(max_length=8, null=True)  # ISO 639-1, e.g. "en", "pt"
    sentiment = fields.CharField(max_length=8, null=True)  # negative | neutral | positive
    sentiment_score = fields.FloatField(null=True)  # P(positive) - P(negative), [-1, 1]
    sentiment_confidence = fields.FloatField(null=True)  # probability of `sentiment`
    keywords = ArrayField(element_type="text", null=True)
    analyzed_at = fields.DatetimeField(null=True)

    class Meta:
        table = "post"
        unique_together = (("platform", "external_id"),)
        indexes = (("influencer_id", "published_at"), ("account_id", "published_at"))


class Comment(Model):
    id = fields.BigIntField(primary_key=True)
    post: fields.ForeignKeyRelation[Post] = fields.ForeignKeyField(
        "tenant.Post", related_name="comment_rows", on_delete=fields.CASCADE
    )
    platform = fields.CharField(max_length=16)
    external_id = fields.CharField(max_length=100)
    author = fields.CharField(max_length=200, default="")
    text = fields.TextField(default="")
    likes = fields.BigIntField(default=0)
    published_at = fields.DatetimeField(null=True)
    # Filled by the analytics pass, like Post's.
    language = fields.CharField(max_length=8, null=True)
    sentiment = fields.CharField(max_length=8, null=True)
    sentiment_score = fields.FloatField(null=True)
    sentiment_confidence = fields.FloatField(null=True)
    analyzed_at = fields.DatetimeField(null=True)

    class Meta:
        table = "comment"
        unique_together = (("platform", "external_id"),)
