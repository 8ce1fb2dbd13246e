"""The comments' request and response models."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from portal_engagement.submissions.schemas import PageMeta, SubmitterIn


class CommentIn(SubmitterIn):
    body: str = Field(min_length=1, max_length=2000)


class CommentOut(BaseModel):
    id: str
    body: str
    author: str | None = Field(validation_alias="display_name")
    published_at: datetime | None


class CommentPage(PageMeta):
    article_id: str
    items: list[CommentOut]
