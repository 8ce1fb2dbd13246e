"""The ingest use cases: what happens when a partner sends, an operator administers, or the
pipeline reports. Each loads state, asks domain.py what to do, and commits the result together
with the events it causes (the outbox), in one transaction.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from minio.error import S3Error
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portal_contracts.articles import (
    ArticleAction,
    ArticleIngested,
    ArticleIngestedEvent,
    Channel,
    article_id_for,
)
from portal_contracts.partner import PartnerArticleMessage
from portal_contracts.topics import ARTICLE_INGESTED
from portal_ingest import desk_images, domain
from portal_ingest import repository as repo
from portal_ingest.domain import Outcome, Status
from portal_ingest.fairness import BurstDetector
from portal_ingest.kafka_admin import PartnerKafkaProvisioner
from portal_ingest.settings import Settings
from portal_runtime.eventsize import EventTooLarge
from portal_runtime.logs import get_logger
from portal_runtime.outbox import Outbox
from portal_runtime.relay_queue import Lane
from portal_runtime.storage import ObjectStore

log = get_logger(__name__)

PRODUCER = "ingest"

Sessions = async_sessionmaker[AsyncSession]


class RefusalKind(StrEnum):
    FORBIDDEN = "forbidden"  # source unknown/inactive, section not allowed, another's article
    NOT_FOUND = "not_found"
    STALE = "stale_revision"
    CONFLICT = "revision_conflict"
    TOO_LARGE = "too_large"  # the event it would make is over the broker's limit
    UNSUPPORTED_MEDIA = "unsupported_media"  # an upload that is not an acceptable image


class Refused(Exception):
    """A domain refusal, with a reason meant for the partner."""

    def __init__(self, kind: RefusalKind, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


class StorageUnavailable(Exception):
    """The raw archive could not be written; nothing was stored or emitted."""


@dataclass(frozen=True)
class Receipt:
    article_id: str
    source: str
    external_id: str
    revision: int
    action: ArticleAction
    status: Status
    duplicate: bool
    received_at: datetime


_OUTCOME_REFUSAL = {
    Outcome.STALE: RefusalKind.STALE,
    Outcome.CONFLICT: RefusalKind.CONFLICT,
    Outcome.UNKNOWN_ARTICLE: RefusalKind.NOT_FOUND,
}


class Ingestor:
    """Accepts partner messages from every channel with the same rules."""

    def __init__(
        self,
        sessions: Sessions,
        raw_store: ObjectStore,
        outbox: Outbox,
        lanes: BurstDetector | None = None,
    ) -> None:
        self.sessions = sessions
        self.raw_store = raw_store
        self.outbox = outbox
        self.lanes = lanes or BurstDetector()

    async def submit(
        self, source: str, message: PartnerArticleMessage, channel: Channel, raw: bytes
    ) -> Receipt:
        """Accept ``message`` from ``source`` (taken from the key or topic, never the payload).

        What can be told without a lock is told first (the source may send, a repeat, a stale
        revision), so refusals and repeats cost no archive write. A new revision's raw bytes are
        then archived (named by their content, outside any transaction), and the revision is
        stored and emitted as article.ingested in one short transaction under the article's
        lock, which decides again. Raises ``Refused`` or ``StorageUnavailable``.
        """
        sub = _Submission(
            source=source,
            message=message,
            channel=channel,
            article_id=article_id_for(source, message.external_id),
            digest=domain.content_hash(message.action, message.content),
        )
        async with self.sessions() as session:
            await _check_sender(session, source, message)
            known = await self._decide(session, sub)
        if known.receipt is not None:
            return known.receipt
        key = await self._archive(sub, raw)
        async with self.sessions.begin() as session:
            await repo.lock_article(session, sub.article_id)
            decided = await self._decide(session, sub)
            if decided.receipt is not None:
                return decided.receipt
            event = _ingested_event(sub, decided.revision, key)
            status = domain.status_on_ingest(message.action)
            await _store_revision(session, sub, event, key, status)
            lane = await self._emit(session, sub, event)
        self.outbox.notify()
        _log_accepted(sub, decided.revision, lane)
        return Receipt(
            article_id=sub.article_id,
            source=source,
            external_id=message.external_id,
            revision=decided.revision,
            action=message.action,
            status=status,
            duplicate=False,
            received_at=event.data.received_at,
        )

    async def _decide(self, session: AsyncSession, sub: _Submission) -> _Decided:
        """The revision the message would make; a receipt when it makes none (a repeat)."""
        message = sub.message
        article = await repo.get_article(session, sub.article_id)
        latest = None if article is None else domain.Latest(article.revision, article.content_hash)
        same_number = None
        if article is not None and message.revision is not None:
            same_number = await repo.get_revision(session, sub.article_id, message.revision)
        decision = domain.decide_revision(
            latest,
            action=message.action,
            requested=message.revision,
            content_hash=sub.digest,
            hash_of_requested=None if same_number is None else same_number.content_hash,
        )
        if decision.outcome in _OUTCOME_REFUSAL:
            raise Refused(_OUTCOME_REFUSAL[decision.outcome], decision.reason or "refused")
        if decision.outcome is not Outcome.DUPLICATE:
            return _Decided(decision.revision)
        assert article is not None
        known = await repo.get_revision(session, sub.article_id, decision.revision)
        return _Decided(
            decision.revision,
            Receipt(
                article_id=sub.article_id,
                source=article.source,
                external_id=message.external_id,
                revision=decision.revision,
                action=ArticleAction(known.action if known else article.action),
                status=article.status,
                duplicate=True,
                received_at=known.received_at if known else article.updated_at,
            ),
        )

    async def _archive(self, sub: _Submission, raw: bytes) -> str:
        """Archive the original as received; its object key.

        Before anything refers to it, and never under the lock: a failure refuses the message
        (the sender retries) with nothing stored; a revision that loses a race afterwards leaves
        an archived copy of what was sent, under its content's name.
        """
        key = domain.raw_object_key(sub.source, sub.message.external_id, raw)
        try:
            await self.raw_store.put(key, raw, "application/json")
        except Exception as exc:
            # Whatever the S3 client raised: refuse now, the sender retries.
            log.warning("raw_archive_failed", key=key, error=repr(exc))
            raise StorageUnavailable(f"object storage unavailable: {exc}") from exc
        return key

    async def _emit(
        self, session: AsyncSession, sub: _Submission, event: ArticleIngestedEvent
    ) -> Lane:
        """Queue article.ingested in the caller's transaction, in the lane the sender's pace
        gives it; an event over the broker's limit refuses the message."""
        lane = self.lanes.lane(sub.source, time.monotonic(), backfill=sub.message.backfill)
        try:
            await self.outbox.add(
                session, ARTICLE_INGESTED.name, event, lane=lane, fair_key=sub.source
            )
        except EventTooLarge as exc:
            raise Refused(RefusalKind.TOO_LARGE, exc.reason) from exc
        return lane


@dataclass(frozen=True)
class _Submission:
    """One message being accepted: who sent it, on which channel, and what identifies it."""

    source: str
    message: PartnerArticleMessage
    channel: Channel
    article_id: str
    digest: str  # the content's hash: a repeat is recognised by it


async def _check_sender(session: AsyncSession, source: str, message: PartnerArticleMessage) -> None:
    """Refuse a source that may not send (unknown or inactive) or a section not granted to it."""
    src = await repo.get_source(session, source)
    refusal = domain.source_refusal(None if src is None else src.info(), source)
    if refusal is not None or src is None:
        raise Refused(RefusalKind.FORBIDDEN, refusal or f"unknown source '{source}'")
    refusal = domain.section_refusal(src.info(), message.content)
    if refusal is not None:
        raise Refused(RefusalKind.FORBIDDEN, refusal)


def _ingested_event(sub: _Submission, revision: int, key: str) -> ArticleIngestedEvent:
    """The article.ingested event of a new revision, received now."""
    message = sub.message
    return ArticleIngestedEvent(
        producer=PRODUCER,
        subject=sub.article_id,
        data=ArticleIngested(
            article_id=sub.article_id,
            source=sub.source,
            external_id=message.external_id,
            revision=revision,
            action=message.action,
            channel=sub.channel,
            received_at=datetime.now(UTC),
            content=message.content,
            raw_object_key=key,
        ),
    )


async def _store_revision(
    session: AsyncSession,
    sub: _Submission,
    event: ArticleIngestedEvent,
    key: str,
    status: Status,
) -> None:
    """Make the event's revision the article's newest, in the caller's transaction."""
    message, content = sub.message, sub.message.content
    await repo.save_revision(
        session,
        article_id=sub.article_id,
        source=sub.source,
        external_id=message.external_id,
        revision=event.data.revision,
        action=message.action.value,
        channel=sub.channel.value,
        content_hash=sub.digest,
        content=None if content is None else content.model_dump(mode="json"),
        title=None if content is None else content.title,
        section=None if content is None else content.section,
        raw_object_key=key,
        event_id=event.event_id,
        received_at=event.data.received_at,
        status=status,
        status_reason=domain.RETRACTED_BY_SOURCE if status is Status.RETRACTED else None,
    )


def _log_accepted(sub: _Submission, revision: int, lane: Lane) -> None:
    # One line per partner request; a consumed partner topic logs no line per message.
    log_accepted = log.info if sub.channel is Channel.REST else log.debug
    log_accepted(
        "article_ingested",
        article_id=sub.article_id,
        source=sub.source,
        revision=revision,
        action=sub.message.action.value,
        channel=sub.channel.value,
        lane=lane.name.lower(),
    )


@dataclass(frozen=True)
class _Decided:
    revision: int
    receipt: Receipt | None = None  # set for a repeat: nothing new to store or emit


@dataclass(frozen=True)
class PartnerError:
    source: str | None
    topic: str
    partition: int
    offset: int
    external_id: str | None
    revision: int | None
    error_type: str
    reason: str


@dataclass(frozen=True)
class StatusChange:
    """What one pipeline event says about an item's status."""

    article_id: str
    revision: int
    status: Status | None  # None: nothing the partner sees changes
    reason: str | None
    occurred_at: datetime
    public_path: str | None = None
    touch_public_path: bool = False


class StatusTracker:
    """Follows each item through the pipeline for the partner's status view."""

    async def apply(self, session: AsyncSession, changes: list[StatusChange]) -> int:
        """Apply pipeline events (once each: the caller's inbox) in the caller's transaction;
        returns how many items changed. The items are locked in key order; each item's events
        are checked against the status before them, in the store or earlier in the batch."""
        relevant = [c for c in changes if c.status is not None]
        current = await repo.lock_statuses(session, {c.article_id for c in relevant})
        updates: dict[str, dict[str, object]] = {}
        history: list[dict[str, object]] = []
        for change in relevant:
            assert change.status is not None
            state = current.get(change.article_id)
            if state is None:
                continue  # not an item ingest received (e.g. another environment's test)
            if not domain.should_apply_status(state, change.revision, change.status):
                continue
            current[change.article_id] = domain.StatusState(change.revision, change.status)
            values = updates.setdefault(change.article_id, {})
            values.update(
                status=change.status.value,
                status_revision=change.revision,
                status_reason=change.reason,
                status_at=change.occurred_at,
            )
            if change.touch_public_path:
                values["public_path"] = change.public_path
            history.append(
                {
                    "article_id": change.article_id,
                    "revision": change.revision,
                    "status": change.status.value,
                    "reason": change.reason,
                    "occurred_at": change.occurred_at,
                }
            )
        await repo.set_statuses(session, updates)
        await repo.add_histories(session, history)
        return len(updates)


@dataclass(frozen=True)
class IssuedApiKey:
    key_id: str
    token: str
    row: repo.ApiKeyRow


@dataclass(frozen=True)
class KafkaAccess:
    username: str
    password: str
    topic: str
    bootstrap_servers: str
    row: repo.KafkaCredentialRow


class Admin:
    """Operators' actions: sources, API keys, Kafka credentials."""

    def __init__(
        self, settings: Settings, sessions: Sessions, provisioner: PartnerKafkaProvisioner
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.provisioner = provisioner

    async def _existing_source(self, session: AsyncSession, code: str) -> repo.SourceRow:
        src = await repo.get_source(session, code)
        if src is None:
            raise Refused(RefusalKind.NOT_FOUND, f"unknown source '{code}'")
        return src

    async def put_source(
        self, code: str, *, name: str, kind: str, sections: list[str], active: bool
    ) -> tuple[repo.SourceRow, bool]:
        async with self.sessions.begin() as session:
            row, created = await repo.upsert_source(
                session,
                code=code,
                name=name,
                kind=kind,
                sections=domain.allowed_sections(sections),
                active=active,
            )
        log.info("source_saved", source=code, created=created, active=active)
        return row, created

    async def list_sources(self) -> list[repo.SourceRow]:
        async with self.sessions() as session:
            return await repo.list_sources(session)

    async def get_source(self, code: str) -> repo.SourceRow:
        async with self.sessions() as session:
            return await self._existing_source(session, code)

    async def issue_api_key(self, code: str, label: str | None) -> IssuedApiKey:
        key = domain.new_api_key()
        async with self.sessions.begin() as session:
            await self._existing_source(session, code)
            row = await repo.insert_api_key(
                session,
                key_id=key.key_id,
                source=code,
                secret_hash=domain.hash_api_key(key.key_id, key.secret),
                label=label,
            )
        log.info("api_key_issued", source=code, key_id=key.key_id)
        return IssuedApiKey(key_id=key.key_id, token=key.token, row=row)

    async def list_api_keys(self, code: str) -> list[repo.ApiKeyRow]:
        async with self.sessions() as session:
            await self._existing_source(session, code)
            return await repo.list_api_keys(session, code)

    async def revoke_api_key(self, code: str, key_id: str) -> None:
        async with self.sessions.begin() as session:
            await self._existing_source(session, code)
            if not await repo.revoke_api_key(session, code, key_id):
                raise Refused(RefusalKind.NOT_FOUND, f"source '{code}' has no API key '{key_id}'")
        log.info("api_key_revoked", source=code, key_id=key_id)

    async def grant_kafka(self, code: str) -> KafkaAccess:
        async with self.sessions() as session:
            src = await self._existing_source(session, code)
        if not src.active:
            raise Refused(RefusalKind.FORBIDDEN, f"source '{code}' is inactive")
        # Broker first: if it fails nothing is recorded, and a retry starts over.
        grant = await self.provisioner.grant(code)
        async with self.sessions.begin() as session:
            row = await repo.upsert_kafka_credential(
                session, source=code, username=grant.username, topic=grant.topic
            )
        log.info("kafka_credentials_granted", source=code, username=grant.username)
        return KafkaAccess(
            username=grant.username,
            password=grant.password,
            topic=grant.topic,
            bootstrap_servers=self.settings.kafka_partner_bootstrap_servers,
            row=row,
        )

    async def kafka_access(self, code: str) -> repo.KafkaCredentialRow:
        async with self.sessions() as session:
            await self._existing_source(session, code)
            row = await repo.get_kafka_credential(session, code)
        if row is None:
            raise Refused(RefusalKind.NOT_FOUND, f"source '{code}' has no Kafka credentials yet")
        return row


class DeskImages:
    """Images uploaded in the desk for an agency's article: checked, archived by content."""

    def __init__(self, settings: Settings, sessions: Sessions, raw_store: ObjectStore) -> None:
        self.settings = settings
        self.sessions = sessions
        self.raw_store = raw_store

    async def upload(self, source: str, data: bytes) -> tuple[desk_images.CheckedImage, str]:
        """Check and store ``data`` for ``source``; the image and the URL articles cite.
        Raises ``Refused`` (unknown or inactive source, not an acceptable image) or
        ``StorageUnavailable``."""
        async with self.sessions() as session:
            src = await repo.get_source(session, source)
        refusal = domain.source_refusal(None if src is None else src.info(), source)
        if refusal is not None:
            raise Refused(RefusalKind.FORBIDDEN, refusal)
        try:
            image = desk_images.check_image(
                data,
                max_bytes=self.settings.desk_image_max_bytes,
                max_pixels=self.settings.desk_image_max_pixels,
            )
        except desk_images.ImageRefused as exc:
            raise Refused(RefusalKind.UNSUPPORTED_MEDIA, exc.reason) from exc
        key = desk_images.object_key(source, image.name)
        try:
            await self.raw_store.put(key, data, image.content_type)
        except Exception as exc:
            log.warning("desk_image_store_failed", key=key, error=repr(exc))
            raise StorageUnavailable(f"object storage unavailable: {exc}") from exc
        log.info("desk_image_stored", source=source, key=key, bytes=len(data))
        url = desk_images.public_url(self.settings.desk_media_base_url, source, image.name)
        return image, url

    async def read(self, source: str, name: str) -> tuple[bytes, str] | None:
        """An uploaded image's bytes and content type; None when there is none by that name."""
        match = desk_images.MEDIA_NAME.match(name)
        if match is None:
            return None
        try:
            data = await self.raw_store.get(desk_images.object_key(source, name))
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject", "NotFound"):
                return None
            raise StorageUnavailable(f"object storage unavailable: {exc}") from exc
        except Exception as exc:
            raise StorageUnavailable(f"object storage unavailable: {exc}") from exc
        return data, desk_images.CONTENT_TYPES[match.group(2)]
