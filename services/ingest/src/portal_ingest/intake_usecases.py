"""The intake: accepting partner messages from every channel (REST, partner topics, feeds, the
desk) with the same rules. Each batch's state is read in one statement, domain.py decides, new
revisions are archived as received and then stored with their article.ingested events (the
outbox) in one transaction.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from opentelemetry import context as otel_context
from opentelemetry.context import Context
from sqlalchemy.ext.asyncio import AsyncSession

from portal_contracts.articles import (
    ArticleAction,
    ArticleIngested,
    ArticleIngestedEvent,
    ByteRange,
    Channel,
    article_id_for,
)
from portal_contracts.codec import encode
from portal_contracts.envelope import Envelope
from portal_contracts.partner import PartnerArticleMessage
from portal_contracts.topics import ARTICLE_INGESTED
from portal_ingest import domain, raw_packs
from portal_ingest import intake_repository as repo
from portal_ingest.domain import Outcome, Status
from portal_ingest.fairness import BurstDetector
from portal_ingest.raw_packs import RawObject, RawPlace
from portal_ingest.usecases import RefusalKind, Refused, Sessions, StorageUnavailable
from portal_runtime.eventsize import EventTooLarge, record_bytes
from portal_runtime.logs import get_logger
from portal_runtime.outbox import Outbox
from portal_runtime.relay_queue import Lane
from portal_runtime.storage import ObjectStore
from portal_runtime.telemetry import current_traceparent, tag_event

log = get_logger(__name__)

PRODUCER = "ingest"


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
    # The trace of the request it came with, when it is accepted among others' (a group): its
    # event and its archive write stay in that trace.
    trace: Context | None = None


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
        max_pack_bytes: int = 8 << 20,
    ) -> None:
        self.sessions = sessions
        self.raw_store = raw_store
        self.outbox = outbox
        self.lanes = lanes or BurstDetector()
        self._archive_slots = asyncio.Semaphore(archive_concurrency)
        self.max_pack_bytes = max_pack_bytes

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

    async def submit_group(
        self, group: Sequence[Submission]
    ) -> list[IntakeResult | StorageUnavailable]:
        """Accept concurrent submissions together (group commit): what ``submit`` does for
        each, with one state read, one transaction and one statement per step for the group.
        The members are decided in order, as a batch's are. A member whose archive write fails
        is answered ``StorageUnavailable`` and the others are decided again without it. Raises
        what a failing read or transaction raises (nothing of the group is then stored)."""
        answers: dict[int, IntakeResult | StorageUnavailable] = {}
        members = list(range(len(group)))
        archived: dict[str, RawPlace] = {}  # written in an earlier round: not written again
        while True:
            items = await self._decide([group[m] for m in members])
            for item in items:
                item.place = archived.get(item.key)
            failed = await self._put_originals(
                [item for item in items if item.event is not None], alone_on_failure=True
            )
            archived.update((item.key, item.place) for item in items if item.place is not None)
            if not failed:
                break
            for member, item in zip(members, items, strict=True):
                if item.key in failed:
                    answers[member] = failed[item.key]
            members = [m for m, item in zip(members, items, strict=True) if item.key not in failed]
        if any(item.event is not None for item in items):
            async with self.sessions.begin() as session:
                await self._store(session, items)
            self.outbox.notify()
        for member, item in zip(members, items, strict=True):
            answers[member] = item.result
        return [answers[m] for m in range(len(group))]

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
        current = current_traceparent()
        for item in items:
            item.event = None
            sub, message = item.sub, item.sub.message
            headers = current if sub.trace is None else current_traceparent(sub.trace)
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
            # Measured with room for the pack's byte range, which the event names once written.
            size = _record_bytes(event, item.content_bytes, headers) + _BYTE_RANGE_ROOM
            if size > self.outbox.max_message_bytes:
                too_large = EventTooLarge(
                    ARTICLE_INGESTED.name, size, self.outbox.max_message_bytes
                )
                item.outcome = Refused(RefusalKind.TOO_LARGE, too_large.reason)
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
        """Archive the originals of ``items`` (``_put_originals``); raises
        ``StorageUnavailable`` when one could not be written."""
        failed = await self._put_originals(items)
        if failed:
            raise next(iter(failed.values()))

    async def _put_originals(
        self, items: Sequence[_Item], *, alone_on_failure: bool = False
    ) -> dict[str, StorageUnavailable]:
        """Archive the originals of ``items`` as received, before anything refers to them and
        never under a lock: each agency's in one pack (``raw_packs``), a few objects at a time;
        the keys of the items that could not be written. A failure refuses those messages (the
        sender retries) with nothing stored; a revision that loses a race afterwards leaves an
        archived copy of what was sent. ``alone_on_failure``: the originals of a pack that
        could not be written are each tried alone, so that only those that fail are refused
        (a group of requests, each answered on its own)."""
        todo: dict[str, dict[str, _Item]] = {}  # agency -> own key -> item, each original once
        for item in items:
            if item.place is None:
                todo.setdefault(item.sub.source, {}).setdefault(item.key, item)
        if not todo:
            return {}
        writes: list[tuple[RawObject, list[_Item]]] = []
        for source, originals in todo.items():
            objects = raw_packs.plan(
                source,
                [(key, item.sub.raw) for key, item in originals.items()],
                self.max_pack_bytes,
            )
            each = iter(originals.values())
            writes.extend((obj, [next(each) for _ in obj.places]) for obj in objects)
        failed: dict[str, StorageUnavailable] = {}
        places: dict[str, RawPlace] = {}
        while writes:
            results = await asyncio.gather(
                *(self._put(obj, members) for obj, members in writes), return_exceptions=True
            )
            again: list[tuple[RawObject, list[_Item]]] = []
            for (obj, written), result in zip(writes, results, strict=True):
                if isinstance(result, BaseException):
                    if not isinstance(result, Exception):
                        raise result
                    # Whatever the S3 client raised: refuse now, the sender retries.
                    log.warning("raw_archive_failed", key=obj.key, error=repr(result))
                    if alone_on_failure and len(written) > 1:
                        again.extend((raw_packs.alone(m.key, m.sub.raw), [m]) for m in written)
                        continue
                    refusal = StorageUnavailable(f"object storage unavailable: {result}")
                    refusal.__cause__ = result
                    failed.update((member.key, refusal) for member in written)
                else:
                    places.update(
                        (member.key, place)
                        for member, place in zip(written, obj.places, strict=True)
                    )
            writes = again
        for item in items:
            if item.place is None:
                item.place = places.get(item.key)
        return failed

    async def _put(self, obj: RawObject, members: list[_Item]) -> None:
        # In the trace of its first original's request (a pack serves several).
        trace = members[0].sub.trace
        token = None if trace is None else otel_context.attach(trace)
        try:
            async with self._archive_slots:
                await self.raw_store.put(obj.key, obj.data, obj.content_type)
        finally:
            if token is not None:
                otel_context.detach(token)

    async def _store(self, session: AsyncSession, items: Sequence[_Item]) -> None:
        """Store the new revisions among ``items`` and queue their events, in ``session``'s
        transaction. An article another writer changed since it was read is decided again,
        under its row lock (its outcomes may change: a repeat, a refusal, another number)."""
        _name_archive(items)
        stored = await repo.store_revisions(session, *_rows(items))
        lost = {item.article_id for item in items if item.event is not None} - stored
        if lost:
            again = [item for item in items if item.article_id in lost]
            state = await repo.intake_state(session, [item.question for item in again], lock=True)
            self._fold(again, state)
            await self._archive([item for item in again if item.event is not None])
            _name_archive(again)
            stored = await repo.store_revisions(session, *_rows(again))
            if {item.article_id for item in again if item.event is not None} - stored:
                raise RuntimeError("an article changed under its row lock")  # never: a bug
        await self._emit(session, [item for item in items if item.event is not None])

    async def _emit(self, session: AsyncSession, items: Sequence[_Item]) -> None:
        """Queue the items' article.ingested events, in order, in one statement: each in the
        lane its sender's pace gives it and in the trace it came with."""
        events: list[tuple[str, Envelope, dict[str, str]]] = []
        lanes: list[tuple[Lane, str | None]] = []
        now = time.monotonic()
        current = current_traceparent()
        for item in items:
            sub, event = item.sub, item.event
            assert event is not None
            lane = self.lanes.lane(sub.source, now, backfill=sub.message.backfill)
            token = None if sub.trace is None else otel_context.attach(sub.trace)
            try:
                # The request's span says which article it made; its log line is in its trace.
                tag_event(event)
                headers = current if sub.trace is None else current_traceparent()
                _log_accepted(item, lane)
            finally:
                if token is not None:
                    otel_context.detach(token)
            events.append((ARTICLE_INGESTED.name, event, headers))
            lanes.append((lane, sub.source))
        await self.outbox.add_all(session, events, lanes=lanes)


@dataclass(eq=False)
class _Item:
    """One submission being accepted: what identifies it, and what became of it."""

    sub: Submission
    article_id: str
    digest: str  # the content's hash: a repeat is recognised by it
    content_bytes: int  # what the content takes in JSON, in its event
    key: str  # its raw bytes' own name (by their content), alone or in a pack
    outcome: IntakeResult | None = None
    event: ArticleIngestedEvent | None = None  # a new revision's event
    place: RawPlace | None = None  # where its raw bytes were archived (None: not yet)
    # A new revision replaces the one its article's row held when it was decided (None: no row
    # yet), whose title and section a retraction keeps.
    expected: int | None = None
    stored_title_section: tuple[str | None, str | None] = (None, None)

    @classmethod
    def of(cls, sub: Submission) -> _Item:
        message = sub.message
        digest, content_bytes = domain.content_digest(message.action, message.content)
        return cls(
            sub=sub,
            article_id=article_id_for(sub.source, message.external_id),
            digest=digest,
            content_bytes=content_bytes,
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


def _record_bytes(event: ArticleIngestedEvent, content_bytes: int, headers: dict[str, str]) -> int:
    """The event's record size, its content counted as ``content_bytes`` (from the content's
    hash, already written) rather than written again."""
    bare = event.model_copy(update={"data": event.data.model_copy(update={"content": None})})
    value = len(encode(bare)) - len(b"null") + content_bytes
    return record_bytes(event.subject.encode(), b"", headers) + value


# The encoded size of the largest raw_byte_range an event may name (checked before it is known).
_BYTE_RANGE_ROOM = len(
    ',"raw_byte_range":' + ByteRange(offset=1 << 63, length=1 << 63).model_dump_json()
)


def _name_archive(items: Sequence[_Item]) -> None:
    """Make the new revisions' events name where their originals were archived."""
    for item in items:
        event, place = item.event, item.place
        if event is None or place is None or event.data.raw_object_key == place.key:
            continue
        byte_range = (
            None
            if place.offset is None or place.length is None
            else ByteRange(offset=place.offset, length=place.length)
        )
        data = event.data.model_copy(
            update={"raw_object_key": place.key, "raw_byte_range": byte_range}
        )
        item.event = event.model_copy(update={"data": data})


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
                raw_object_key=data.raw_object_key or item.key,
                raw_offset=None if data.raw_byte_range is None else data.raw_byte_range.offset,
                raw_length=None if data.raw_byte_range is None else data.raw_byte_range.length,
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
    # One line per partner request; a consumed partner topic logs no line per message (unless
    # at DEBUG, asked first: a line the level drops still costs its processors).
    if item.sub.channel is Channel.REST:
        log_accepted = log.info
    elif log.isEnabledFor(logging.DEBUG):
        log_accepted = log.debug
    else:
        return
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
