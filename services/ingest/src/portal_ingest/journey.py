"""The article journey, for SREs and operators: every stage one article passed, with times and a
link to the trace of each stage.

Ingest follows each article through the pipeline anyway (partner status); this module records
every article event it sees on Kafka (its own ``article.ingested`` and the later stages) with the
W3C trace id carried in the message headers, in its own table. The same consumer as the partner
status (``handlers.following_subscription``) records them: each event is fetched, decoded and
stored once, in one transaction with the status it changes. The admin API
``GET /admin/v1/articles/{article_id}/journey`` lists the stages in order, how long each took
after the one before, and the traces they belong to: one for the partner's request (through to
search when a trusted source's article is published at once), another for an editor's decision.

Wired from ``app.py`` by ``install_journey`` (router, and the review backlog gauges).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, HTTPException, status
from pydantic import BaseModel, Field
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    String,
    Table,
    Text,
    Uuid,
    func,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portal_contracts.articles import (
    ArticleAction,
    ArticleIngestedEvent,
    ArticleNormalizedEvent,
    ArticlePublishedEvent,
    ArticleReviewedEvent,
    PublishedState,
)
from portal_contracts.envelope import Envelope
from portal_ingest.db import articles, metadata
from portal_runtime.auth import admin_guard
from portal_runtime.batch import Message
from portal_runtime.clock import utcnow
from portal_runtime.metrics import GaugeValues, declare_gauge, labels
from portal_runtime.service import Service
from portal_runtime.settings import ServiceSettings
from portal_runtime.telemetry import parse_traceparent

PRODUCER = "ingest"

Sessions = async_sessionmaker[AsyncSession]

# One row per article event seen (migrations/versions/0003_journey.py).
article_journey = Table(
    "article_journey",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("event_id", Uuid, nullable=False, unique=True),  # a redelivery is recorded once
    Column("article_id", String(36), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("stage", String(32), nullable=False),
    Column("service", String(64), nullable=False),
    Column("detail", Text, nullable=True),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("logged_at", DateTime(timezone=True), nullable=True),  # Kafka's append time
    Column("topic", String(255), nullable=False),
    Column("trace_id", String(32), nullable=True),
    Column("span_id", String(16), nullable=True),
    Index("ix_article_journey_article_id_occurred_at", "article_id", "occurred_at"),
)


# -- what each event means (pure) --------------------------------------------------------------


@dataclass(frozen=True)
class Stage:
    article_id: str
    revision: int
    stage: str
    service: str
    detail: str | None
    occurred_at: datetime


def stage_of(event: Envelope) -> Stage | None:
    """The journey stage an article event stands for (None for any other event)."""
    if isinstance(event, ArticleIngestedEvent):
        ing = event.data
        retract = ing.action is ArticleAction.RETRACT
        return Stage(
            ing.article_id,
            ing.revision,
            "retraction_received" if retract else "received",
            event.producer,
            f"{ing.action.value} via {ing.channel.value}",
            ing.received_at,
        )
    # Every later stage is timed by its event: when the producing service committed it.
    if isinstance(event, ArticleNormalizedEvent):
        norm = event.data
        detail = None
        if norm.quality is not None:
            detail = (
                f"quality {norm.quality.score:.2f}, {len(norm.quality.repairs)} repaired, "
                f"{len(norm.quality.issues)} to check"
            )
        if norm.duplicate_of:
            detail = f"{detail + '; ' if detail else ''}near-duplicate of {norm.duplicate_of}"
        return Stage(
            norm.article_id, norm.revision, "normalized", event.producer, detail, event.occurred_at
        )
    if isinstance(event, ArticleReviewedEvent):
        rev = event.data
        detail = f"{rev.decision.value} by {rev.reviewer}"
        if rev.reason:
            detail += f": {rev.reason}"
        return Stage(
            rev.article_id,
            rev.revision,
            rev.decision.value,
            event.producer,
            detail,
            event.occurred_at,
        )
    if isinstance(event, ArticlePublishedEvent):
        pub = event.data
        published = pub.state is PublishedState.PUBLISHED
        return Stage(
            pub.article_id,
            pub.revision,
            "published" if published else "removed",
            event.producer,
            pub.url_path if published else "retracted from the public site",
            event.occurred_at,
        )
    return None


class JourneyStage(BaseModel):
    stage: str = Field(
        description="received, normalized, approved, auto_published, rejected, retracted, "
        "published, removed, retraction_received"
    )
    service: str = Field(description="The service that reported the stage.")
    revision: int
    at: datetime = Field(description="When the stage happened (UTC).")
    logged_at: datetime | None = Field(
        default=None, description="When its event reached Kafka (UTC)."
    )
    since_previous_s: float | None = Field(
        default=None, description="Seconds since the stage before it (null for the first)."
    )
    detail: str | None = None
    trace_id: str | None = Field(default=None, description="W3C trace id of the stage.")
    trace_url: str | None = Field(default=None, description="The trace in the trace UI.")


class JourneyTrace(BaseModel):
    trace_id: str
    url: str | None = None
    stages: list[str] = Field(description="The stages that belong to this trace, in order.")
    started_at: datetime


class ArticleJourney(BaseModel):
    article_id: str
    source: str | None = None
    external_id: str | None = None
    title: str | None = None
    status: str | None = Field(default=None, description="The status the partner sees.")
    latest_revision: int | None = None
    stages: list[JourneyStage]
    traces: list[JourneyTrace]
    total_s: float | None = Field(
        default=None, description="Seconds from the first stage to the last."
    )


def trace_url(ui_base: str, trace_id: str | None, article_id: str = "") -> str | None:
    """The link to one trace: ``ui_base`` is a template with ``{trace_id}`` (and optionally
    ``{article_id}``), e.g. the editors' desk journey page, or a Jaeger UI base URL."""
    if not trace_id or not ui_base:
        return None
    if "{trace_id}" in ui_base:
        return ui_base.replace("{trace_id}", trace_id).replace("{article_id}", article_id)
    return f"{ui_base.rstrip('/')}/trace/{trace_id}"


def build_stages(
    rows: Sequence[Any], ui_base: str, article_id: str = ""
) -> tuple[list[JourneyStage], list[JourneyTrace]]:
    """Order the recorded stages and group them by trace. ``rows`` have the table's columns."""
    ordered = sorted(rows, key=lambda r: (r.occurred_at, r.logged_at or r.occurred_at, r.id))
    stages: list[JourneyStage] = []
    traces: dict[str, JourneyTrace] = {}
    previous: datetime | None = None
    for row in ordered:
        stages.append(
            JourneyStage(
                stage=row.stage,
                service=row.service,
                revision=row.revision,
                at=row.occurred_at,
                logged_at=row.logged_at,
                since_previous_s=(
                    None
                    if previous is None
                    else round((row.occurred_at - previous).total_seconds(), 3)
                ),
                detail=row.detail,
                trace_id=row.trace_id,
                trace_url=trace_url(ui_base, row.trace_id, article_id),
            )
        )
        previous = row.occurred_at
        if row.trace_id:
            trace = traces.setdefault(
                row.trace_id,
                JourneyTrace(
                    trace_id=row.trace_id,
                    url=trace_url(ui_base, row.trace_id, article_id),
                    stages=[],
                    started_at=row.occurred_at,
                ),
            )
            trace.stages.append(row.stage)
    return stages, list(traces.values())


# -- recording (Kafka) -------------------------------------------------------------------------


def journey_row(message: Message[Envelope]) -> dict[str, Any] | None:
    """The article_journey row of one event (None for an event that is no journey stage)."""
    event, record = message.event, message.record
    stage = stage_of(event)
    if stage is None:
        return None
    context = parse_traceparent(record.header("traceparent"))
    logged_at = (
        datetime.fromtimestamp(record.timestamp_ms / 1000, UTC)
        if record.timestamp_ms is not None and record.timestamp_ms > 0
        else None
    )
    return {
        "event_id": event.event_id,
        "article_id": stage.article_id,
        "revision": stage.revision,
        "stage": stage.stage,
        "service": stage.service,
        "detail": None if stage.detail is None else stage.detail[:2000],
        "occurred_at": stage.occurred_at,
        "logged_at": logged_at,
        "topic": record.topic,
        "trace_id": None if context is None else context[0],
        "span_id": None if context is None else context[1],
    }


# One statement for any number of stages (compiled once); a redelivered event is recorded once.
_RECORD_STAGES = text(
    """
    INSERT INTO article_journey (event_id, article_id, revision, stage, service, detail,
                                 occurred_at, logged_at, topic, trace_id, span_id)
    SELECT * FROM unnest(
        CAST(:event_id AS uuid[]), CAST(:article_id AS varchar[]), CAST(:revision AS integer[]),
        CAST(:stage AS varchar[]), CAST(:service AS varchar[]), CAST(:detail AS text[]),
        CAST(:occurred_at AS timestamptz[]), CAST(:logged_at AS timestamptz[]),
        CAST(:topic AS varchar[]), CAST(:trace_id AS varchar[]), CAST(:span_id AS varchar[])
    )
    ON CONFLICT (event_id) DO NOTHING
    RETURNING event_id
    """
)
_COLUMNS = (
    "event_id",
    "article_id",
    "revision",
    "stage",
    "service",
    "detail",
    "occurred_at",
    "logged_at",
    "topic",
    "trace_id",
    "span_id",
)


async def record_stages(session: AsyncSession, batch: Sequence[Message[Envelope]]) -> set[UUID]:
    """Every stage of the batch in one statement; the ids of the events recorded now. A
    redelivered event is recorded once (the table's unique event id), so the ids returned are
    the events seen for the first time: the table is the consumer's inbox too."""
    rows = [r for r in map(journey_row, batch) if r is not None]
    if not rows:
        return set()
    columns = {c: [r[c] for r in rows] for c in _COLUMNS}
    return set((await session.execute(_RECORD_STAGES, columns)).scalars())


# -- the admin API -----------------------------------------------------------------------------


async def load_journey(sessions: Sessions, article_id: str, ui_base: str) -> ArticleJourney | None:
    async with sessions() as session:
        article = (
            await session.execute(select(articles).where(articles.c.article_id == article_id))
        ).first()
        rows = (
            await session.execute(
                select(article_journey).where(article_journey.c.article_id == article_id)
            )
        ).all()
    if article is None and not rows:
        return None
    stages, traces = build_stages(rows, ui_base, article_id)
    total = (stages[-1].at - stages[0].at).total_seconds() if len(stages) > 1 else None
    return ArticleJourney(
        article_id=article_id,
        source=None if article is None else article.source,
        external_id=None if article is None else article.external_id,
        title=None if article is None else article.title,
        status=None if article is None else article.status,
        latest_revision=None if article is None else article.revision,
        stages=stages,
        traces=traces,
        total_s=None if total is None else round(total, 3),
    )


def journey_router(settings: ServiceSettings, sessions: Sessions) -> APIRouter:
    router = APIRouter(
        prefix="/admin/v1",
        tags=["admin: journeys"],
        dependencies=[Depends(admin_guard(settings))],
    )

    @router.get(
        "/articles/{article_id}/journey",
        response_model=ArticleJourney,
        summary="Every stage one article passed, with times and links to its traces",
        responses={
            401: {"description": "Admin token missing or wrong"},
            404: {"description": "No article with this id"},
        },
    )
    async def get_journey(article_id: UUID) -> ArticleJourney:
        journey = await load_journey(sessions, str(article_id), settings.traces_ui_url)
        if journey is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, f"article_id: no article with id {article_id}"
            )
        return journey

    return router


# -- the review backlog, as ingest sees it -----------------------------------------------------

REVIEW_BACKLOG = "portal.review.backlog"
REVIEW_BACKLOG_OLDEST = "portal.review.backlog.oldest_age"
declare_gauge(
    REVIEW_BACKLOG,
    unit="{article}",
    description="Partner articles waiting for an editor (status in_review), by source.",
)
declare_gauge(
    REVIEW_BACKLOG_OLDEST,
    unit="s",
    description="How long the oldest article in review has been waiting.",
)


def review_backlog_poll(sessions: Sessions) -> Any:
    async def poll() -> dict[str, GaugeValues]:
        async with sessions() as session:
            rows = (
                await session.execute(
                    select(articles.c.source, func.count(), func.min(articles.c.status_at))
                    .where(articles.c.status == "in_review")
                    .group_by(articles.c.source)
                )
            ).all()
        now = utcnow()
        counts: GaugeValues = {}
        ages: GaugeValues = {}
        for source, count, oldest in rows:
            counts[labels(source=source)] = float(count)
            ages[labels(source=source)] = max(0.0, (now - oldest).total_seconds())
        return {REVIEW_BACKLOG: counts, REVIEW_BACKLOG_OLDEST: ages}

    return poll


def install_journey(service: Service, app: FastAPI) -> None:
    """The journey's admin route and review backlog gauges (called from app.py; its stages are
    recorded by ``handlers.following_subscription``)."""
    service.metrics.add("review_backlog", review_backlog_poll(service.sessions))
    app.include_router(journey_router(service.settings, service.sessions))
