"""The forum's request and response models (``PostOut`` is a comment's too)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from portal_engagement.submissions.schemas import PageMeta, SubmitterIn


class ThreadIn(SubmitterIn):
    title: str = Field(min_length=1, max_length=300)
    body: str = Field(min_length=1, max_length=10_000)


class ReplyIn(SubmitterIn):
    body: str = Field(min_length=1, max_length=5000)


class PostOut(BaseModel):
    id: str
    title: str | None
    body: str
    author: str | None = Field(
        validation_alias="display_name", description="The name the author chose to show, if any."
    )
    published_at: datetime | None


class ThreadSummaryOut(PostOut):
    topic: str | None = Field(validation_alias="forum_topic")
    replies: int
    last_activity_at: datetime | None
    path: str


class ThreadPage(PageMeta):
    items: list[ThreadSummaryOut]


class PostPage(PageMeta):
    items: list[PostOut]


class ThreadOut(BaseModel):
    thread: ThreadSummaryOut
    replies: PostPage
