"""Default topics (a YAML data file) applied at start-up where missing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portal_engagement import repository as repo
from portal_engagement.db import forum_topics, qa_topics
from portal_runtime.logs import get_logger

log = get_logger(__name__)


class _Topic(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=64)
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)


class Catalog(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = 1
    qa_topics: list[_Topic] = Field(default_factory=list)
    forum_topics: list[_Topic] = Field(default_factory=list)


def load_catalog(path: Path) -> Catalog:
    return Catalog.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")) or {})


def _rows(topics: list[_Topic]) -> list[dict[str, Any]]:
    return [{**t.model_dump(), "position": i * 10} for i, t in enumerate(topics)]


async def apply_catalog(sessions: async_sessionmaker[AsyncSession], catalog: Catalog) -> None:
    """Insert the topics that do not exist; never overwrite what an admin changed."""
    async with sessions.begin() as session:
        qa = await repo.insert_missing_topics(session, qa_topics, _rows(catalog.qa_topics))
        forum = await repo.insert_missing_topics(session, forum_topics, _rows(catalog.forum_topics))
    if qa or forum:
        log.info("default_topics_added", qa_topics=qa, forum_topics=forum)
