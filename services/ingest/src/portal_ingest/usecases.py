"""The ingest use cases: what happens when a partner sends, an operator administers, or the
pipeline reports. Each loads state, asks domain.py what to do, and commits the result together
with the events it causes (the outbox), in one transaction.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from minio.error import S3Error
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portal_contracts.articles import (
    ArticleAction,
    ArticleIngested,
    ArticleIngestedEvent,
    Channel,
    article_id_for,
)
from portal_contracts.codec import encode
from portal_contracts.envelope import Envelope
from portal_contracts.partner import PartnerArticleMessage
from portal_contracts.topics import ARTICLE_INGESTED
from portal_ingest import desk_images, domain
from portal_ingest import repository as repo
from portal_ingest.callers import KeyGrants
from portal_ingest.domain import Outcome, Status
from portal_ingest.fairness import BurstDetector
from portal_ingest.kafka_admin import PartnerKafkaProvisioner
from portal_ingest.settings import Settings
from portal_runtime.eventsize import EventTooLarge, check_record
from portal_runtime.logs import get_logger
from portal_runtime.outbox import Outbox
from portal_runtime.relay_queue import Lane
from portal_runtime.storage import ObjectStore
from portal_runtime.telemetry import current_traceparent

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


@dataclass(frozen=True)
class Submission:
    """One message to accept: its agency (from the key or topic, never the payload), the
    message, its channel and its bytes as received."""

    source: str
    message: PartnerArticleMessage
    channel: Channel
    raw: bytes


IntakeResult = Receipt | Refused  # what became of one submission


class Ingestor:
    """Accepts partner messages from every channel with the same rules: one at a time (a
    request) or a batch (a partner topic's), decided by the same steps."""

    def __init__(
        self,
        sessions: Sessions,
        raw_store: ObjectStore,
        outbox: Outbox,
        lanes: BurstDetector | None = None,
        *,
        archive_concurrency: int = 8,
    ) -> None:
        self.sessions = sessions
        self.raw_store = raw_store
        self.outbox = outbox
        self.lanes = lanes or BurstDetector()
        self._archive_slots = asyncio.Semaphore(archive_concurrency)

    async def submit(
        self, source: str, message: PartnerArticleMessage, channel: Channel, raw: bytes
    ) -> Receipt:
        """Accept ``message`` from ``source``; raises ``Refused`` or ``StorageUnavailable``.

        What can be told from the stored state is told first (the source may send, a repeat, a
        stale revision), so refusals and repeats cost no archive write and no transaction. A
        new revision's raw bytes are then archived (named by their content, outside any
        transaction), and the revision is stored and emitted as article.ingested in one short
        transaction, on condition that the article still holds the revision it was decided
        against (else it is decided again, under the article's row lock).
        """
        [item] = await self._decide([Submission(source, message, channel, raw)])
        if item.event is not None:
            await self._archive([item])
            async with self.sessions.begin() as session:
                await self._store(session, [item])
            self.outbox.notify()
        result = item.result
        if isinstance(result, Refused):
            raise result
        return result

    async def submit_batch(
        self, batch: Sequence[Submission], session: Callable[[], Awaitable[AsyncSession]]
    ) -> list[IntakeResult]:
        """Accept a batch in offset order (a partner topic's): each message's receipt or
        refusal, in the batch's order. The batch's state is read in one statement, new
        revisions are archived concurrently (bounded), then stored and queued for the relay in
        ``session``'s transaction (the caller commits) with one statement each, whatever the
        batch's size. Messages about one article are decided one after the other: a revision
        check sees the earlier members of the batch. Raises ``StorageUnavailable``."""
        items = await self._decide(batch)
        new = [item for item in items if item.event is not None]
        if new:
            await self._archive(new)
            await self._store(await session(), items)
        return [item.result for item in items]

    # -- the steps ---------------------------------------------------------------------------

    async def _decide(self, batch: Sequence[Submission]) -> list[_Item]:
        """Each submission's outcome against the stored state (read in one statement, outside
        any transaction: no lock is held while the raw bytes are archived)."""
        items = [_Item.of(sub) for sub in batch]
        async with self.sessions() as session:
            conn = await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            state = await repo.intake_state(conn, [item.question for item in items])
        self._fold(items, state)
        return items

    def _fold(self, items: Sequence[_Item], state: repo.IntakeState) -> None:
        """Decide ``items`` in order against ``state`` and each other (domain rules)."""
        articles: dict[str, _ArticleFold] = {}
        headers = current_traceparent()
        for item in items:
            item.event = None
            sub, message = item.sub, item.sub.message
            refusal = _sender_refusal(state.sources.get(sub.source), sub.source, message)
            if refusal is not None:
                item.outcome = refusal
                continue
            fold = articles.get(item.article_id)
            if fold is None:
                fold = articles[item.article_id] = _ArticleFold.of(item.article_id, state)
            decision = fold.revisions.decide(
                action=message.action, requested=message.revision, content_hash=item.digest
            )
            if decision.outcome in _OUTCOME_REFUSAL:
                item.outcome = Refused(
                    _OUTCOME_REFUSAL[decision.outcome], decision.reason or "refused"
                )
                continue
            if decision.outcome is Outcome.DUPLICATE:
                item.outcome = fold.repeat(item, decision.revision)
                continue
            event = _ingested_event(item, decision.revision)
            try:
                check_record(
                    ARTICLE_INGESTED.name,
                    event.subject.encode(),
                    encode(event),
                    headers,
                    self.outbox.max_message_bytes,
                )
            except EventTooLarge as exc:
                item.outcome = Refused(RefusalKind.TOO_LARGE, exc.reason)
                continue
            if fold.stored is not None:
                item.expected = fold.stored.revision
                item.stored_title_section = (fold.stored.title, fold.stored.section)
            fold.accept(item, event)
            item.event = event
            item.outcome = Receipt(
                article_id=item.article_id,
                source=sub.source,
                external_id=message.external_id,
                revision=decision.revision,
                action=message.action,
                status=domain.status_on_ingest(message.action),
                duplicate=False,
                received_at=event.data.received_at,
            )

    async def _archive(self, items: Sequence[_Item]) -> None:
        """Archive the originals of ``items`` as received (each distinct one once, a few at a
        time), before anything refers to them and never under a lock: a failure refuses the
        messages (the sender retries) with nothing stored; a revision that loses a race
        afterwards leaves an archived copy of what was sent, under its content's name."""
        todo = {item.key: item for item in items if not item.archived}
        if not todo:
            return

        async def put(key: str, item: _Item) -> None:
            async with self._archive_slots:
                await self.raw_store.put(key, item.sub.raw, "application/json")

        results = await asyncio.gather(
            *(put(key, item) for key, item in todo.items()), return_exceptions=True
        )
        for (key, _), result in zip(todo.items(), results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result
                # Whatever the S3 client raised: refuse now, the sender retries.
                log.warning("raw_archive_failed", key=key, error=repr(result))
                raise StorageUnavailable(f"object storage unavailable: {result}") from result
        for item in items:
            item.archived = True

    async def _store(self, session: AsyncSession, items: Sequence[_Item]) -> None:
        """Store the new revisions among ``items`` and queue their events, in ``session``'s
        transaction. An article another writer changed since it was read is decided again,
        under its row lock (its outcomes may change: a repeat, a refusal, another number)."""
        stored = await repo.store_revisions(session, *_rows(items))
        lost = {item.article_id for item in items if item.event is not None} - stored
        if lost:
            again = [item for item in items if item.article_id in lost]
            state = await repo.intake_state(session, [item.question for item in again], lock=True)
            self._fold(again, state)
            await self._archive([item for item in again if item.event is not None])
            stored = await repo.store_revisions(session, *_rows(again))
            if {item.article_id for item in again if item.event is not None} - stored:
                raise RuntimeError("an article changed under its row lock")  # never: a bug
        await self._emit(session, [item for item in items if item.event is not None])

    async def _emit(self, session: AsyncSession, items: Sequence[_Item]) -> None:
        """Queue the items' article.ingested events, in order, each in the lane its sender's
        pace gives it (one statement per run of one lane and agency)."""
        runs: list[tuple[Lane, str, list[tuple[str, Envelope]]]] = []
        now = time.monotonic()
        for item in items:
            assert item.event is not None
            lane = self.lanes.lane(item.sub.source, now, backfill=item.sub.message.backfill)
            if not runs or runs[-1][:2] != (lane, item.sub.source):
                runs.append((lane, item.sub.source, []))
            runs[-1][2].append((ARTICLE_INGESTED.name, item.event))
            _log_accepted(item, lane)
        for lane, source, events in runs:
            await self.outbox.add_many(session, events, lane=lane, fair_key=source)


@dataclass(eq=False)
class _Item:
    """One submission being accepted: what identifies it, and what became of it."""

    sub: Submission
    article_id: str
    document: dict[str, Any] | None  # the content as JSON values
    digest: str  # the content's hash: a repeat is recognised by it
    key: str  # where its raw bytes are archived (named by their content)
    outcome: IntakeResult | None = None
    event: ArticleIngestedEvent | None = None  # a new revision's event
    archived: bool = False
    # A new revision replaces the one its article's row held when it was decided (None: no row
    # yet), whose title and section a retraction keeps.
    expected: int | None = None
    stored_title_section: tuple[str | None, str | None] = (None, None)

    @classmethod
    def of(cls, sub: Submission) -> _Item:
        message = sub.message
        document = None if message.content is None else message.content.model_dump(mode="json")
        return cls(
            sub=sub,
            article_id=article_id_for(sub.source, message.external_id),
            document=document,
            digest=domain.document_hash(message.action, document),
            key=domain.raw_object_key(sub.source, message.external_id, sub.raw),
        )

    @property
    def result(self) -> IntakeResult:
        assert self.outcome is not None, "decided"
        return self.outcome

    @property
    def question(self) -> repo.IntakeQuestion:
        return repo.IntakeQuestion(self.sub.source, self.article_id, self.sub.message.revision)


@dataclass
class _ArticleFold:
    """One article while its submissions are decided: its revisions, and what its row
    becomes."""

    article_id: str
    stored: repo.StoredArticle | None
    known: dict[int, repo.StoredRevision]
    revisions: domain.Revisions

    @classmethod
    def of(cls, article_id: str, state: repo.IntakeState) -> _ArticleFold:
        stored = state.articles.get(article_id)
        known = {rev: r for (aid, rev), r in state.revisions.items() if aid == article_id}
        latest = None if stored is None else domain.Latest(stored.revision, stored.content_hash)
        hashes = {rev: r.content_hash for rev, r in known.items()}
        return cls(article_id, stored, known, domain.Revisions(latest, hashes))

    def accept(self, item: _Item, event: ArticleIngestedEvent) -> None:
        data = event.data
        self.revisions.accept(data.revision, item.digest)
        self.known[data.revision] = repo.StoredRevision(
            data.revision, item.digest, data.action.value, data.received_at
        )

    def repeat(self, item: _Item, revision: int) -> Receipt:
        """The answer to a repeat of ``revision``: what was answered when it was received."""
        known = self.known.get(revision)
        stored = self.stored
        if known is None:
            assert stored is not None  # a repeat is of something held
            action, received_at = stored.action, stored.updated_at
        else:
            action, received_at = known.action, known.received_at
        newest = self.revisions.latest
        status = (
            stored.status
            if stored is not None and newest is not None and newest.revision == stored.revision
            else domain.status_on_ingest(ArticleAction(action))
        )
        return Receipt(
            article_id=self.article_id,
            source=item.sub.source,
            external_id=item.sub.message.external_id,
            revision=revision,
            action=ArticleAction(action),
            status=status,
            duplicate=True,
            received_at=received_at,
        )


def _sender_refusal(
    source: domain.SourceInfo | None, code: str, message: PartnerArticleMessage
) -> Refused | None:
    """A source that may not send (unknown or inactive), or a section not granted to it."""
    refusal = domain.source_refusal(source, code)
    if refusal is not None or source is None:
        return Refused(RefusalKind.FORBIDDEN, refusal or f"unknown source '{code}'")
    refusal = domain.section_refusal(source, message.content)
    return None if refusal is None else Refused(RefusalKind.FORBIDDEN, refusal)


def _ingested_event(item: _Item, revision: int) -> ArticleIngestedEvent:
    """The article.ingested event of a new revision, received now."""
    message = item.sub.message
    return ArticleIngestedEvent(
        producer=PRODUCER,
        subject=item.article_id,
        data=ArticleIngested(
            article_id=item.article_id,
            source=item.sub.source,
            external_id=message.external_id,
            revision=revision,
            action=message.action,
            channel=item.sub.channel,
            received_at=datetime.now(UTC),
            content=message.content,
            raw_object_key=item.key,
        ),
    )


def _rows(
    items: Sequence[_Item],
) -> tuple[list[repo.NewestRevision], list[repo.AcceptedRevision]]:
    """The rows storing the new revisions among ``items``: every revision (in order), and each
    article's newest, replacing the revision its row held when it was read."""
    newest: dict[str, repo.NewestRevision] = {}
    accepted: list[repo.AcceptedRevision] = []
    for item in items:
        if item.event is None:
            continue
        data, message = item.event.data, item.sub.message
        status = domain.status_on_ingest(message.action)
        reason = domain.RETRACTED_BY_SOURCE if status is Status.RETRACTED else None
        accepted.append(
            repo.AcceptedRevision(
                article_id=item.article_id,
                revision=data.revision,
                action=message.action.value,
                channel=item.sub.channel.value,
                content_hash=item.digest,
                content_json=None if item.document is None else json.dumps(item.document),
                raw_object_key=item.key,
                event_id=item.event.event_id,
                received_at=data.received_at,
                status=status,
                status_reason=reason,
            )
        )
        before = newest.get(item.article_id)
        content = message.content
        # A retraction keeps the last known title and section.
        title: str | None
        section: str | None
        if content is not None:
            title, section = content.title, content.section
        elif before is not None:
            title, section = before.title, before.section
        else:
            title, section = item.stored_title_section
        newest[item.article_id] = repo.NewestRevision(
            article_id=item.article_id,
            source=item.sub.source,
            external_id=message.external_id,
            expected=item.expected if before is None else before.expected,
            revision=data.revision,
            action=message.action.value,
            content_hash=item.digest,
            title=title,
            section=section,
            status=status,
            status_reason=reason,
            status_at=data.received_at,
        )
    return sorted(newest.values(), key=lambda n: n.article_id), accepted


def _log_accepted(item: _Item, lane: Lane) -> None:
    # One line per partner request; a consumed partner topic logs no line per message.
    log_accepted = log.info if item.sub.channel is Channel.REST else log.debug
    assert item.event is not None
    log_accepted(
        "article_ingested",
        article_id=item.article_id,
        source=item.sub.source,
        revision=item.event.data.revision,
        action=item.sub.message.action.value,
        channel=item.sub.channel.value,
        lane=lane.name.lower(),
    )


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
        updates: dict[str, repo.StatusUpdate] = {}
        history: list[repo.HistoryEntry] = []
        for change in relevant:
            assert change.status is not None
            state = current.get(change.article_id)
            if state is None:
                continue  # not an item ingest received (e.g. another environment's test)
            if not domain.should_apply_status(state, change.revision, change.status):
                continue
            current[change.article_id] = domain.StatusState(change.revision, change.status)
            before = updates.get(change.article_id)
            # The public path is the last one an applied event set, if any did.
            touched = change.touch_public_path or (before is not None and before.touch_public_path)
            updates[change.article_id] = repo.StatusUpdate(
                article_id=change.article_id,
                revision=change.revision,
                status=change.status,
                reason=change.reason,
                at=change.occurred_at,
                public_path=(
                    change.public_path
                    if change.touch_public_path
                    else (None if before is None else before.public_path)
                ),
                touch_public_path=touched,
            )
            history.append(
                repo.HistoryEntry(
                    article_id=change.article_id,
                    revision=change.revision,
                    status=change.status,
                    reason=change.reason,
                    occurred_at=change.occurred_at,
                )
            )
        await repo.set_statuses(session, list(updates.values()), history)
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
        self,
        settings: Settings,
        sessions: Sessions,
        provisioner: PartnerKafkaProvisioner,
        grants: KeyGrants | None = None,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.provisioner = provisioner
        self.grants = grants  # what API keys grant, as the partner API remembers it

    def _grants_changed(self) -> None:
        """An agency or a key changed: this instance's partner API reads them again."""
        if self.grants is not None:
            self.grants.forget()

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
        self._grants_changed()
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
        self._grants_changed()
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
