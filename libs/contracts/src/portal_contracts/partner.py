"""What a partner agency sends, by REST or on its own Kafka topic (the same model for both).

The source (agency) is never part of it: over REST it comes from the API key, over Kafka from the
topic the message was written to.
"""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from portal_contracts.articles import ArticleAction, ArticleContent
from portal_contracts.envelope import Payload


class PartnerArticleMessage(Payload):
    external_id: str = Field(
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z0-9._:/-]+$",
        description="The partner's own id of the article.",
    )
    action: ArticleAction = ArticleAction.UPSERT
    revision: int | None = Field(
        default=None,
        ge=1,
        le=2_147_483_647,  # stored as a PostgreSQL integer
        description=(
            "The partner's revision number. When given, an older revision arriving after a newer "
            "one is ignored; when omitted, the portal numbers revisions in arrival order."
        ),
    )
    content: ArticleContent | None = None
    backfill: bool = Field(
        default=False,
        description=(
            "True for an archive import rather than news: the portal passes it on at the pace "
            "the pipeline allows, after other agencies' news. Omit it (false) for news."
        ),
    )

    @model_validator(mode="after")
    def _content_matches_action(self) -> Self:
        if self.action is ArticleAction.UPSERT and self.content is None:
            raise ValueError("content is required to create or update an article")
        return self
