"""Kafka handlers of the normalize service: thin, the logic is in ``domain``.

article.ingested -> article.normalized, once per event and only for a newer revision. The
expensive part (text, markup, images) is the subscription's slow step, per message and outside
the transaction; the batch's transaction claims the revisions, links near-duplicates and queues
the events together.

The text steps run on the event loop itself. They hold the GIL nearly all the time, so a thread
of their own (tried) bought no parallelism, only a hand-over per article: a wake-up each way
and the two threads taking the GIL from each other, 60-140 us of CPU per hand-over measured.
The runtime gives the loop a turn after each slow step, within its slot (at most
``kafka_batch_slow_step_concurrency``, 8, at once), so the loop polls its sockets (fetches, the
relay) at least every ~8 articles' text, ~12 ms. Without that turn a whole batch's text ran in
one turn of the loop, and the process fetched and relayed in bursts: in the pipeline bench
(throughput only, one run each) 228 articles/s, against 242 with the text thread and 266 with
the turn.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from portal_contracts.articles import (
    ArticleAction,
    ArticleIngested,
    ArticleIngestedEvent,
    ArticleNormalized,
    ArticleNormalizedEvent,
)
from portal_contracts.codec import encode
from portal_contracts.topics import ARTICLE_INGESTED, ARTICLE_NORMALIZED
from portal_normalize import repository, similarity, similarity_v1
from portal_normalize.domain import (
    MAX_EVENT_BYTES,
    NO_RULES,
    Draft,
    ImageOutcome,
    Normalized,
    SourceRules,
    finish,
    is_newer,
    prepare,
    retraction_data,
    upsert_data,
)
from portal_normalize.event_size import certainly_fits
from portal_normalize.media import MediaService
from portal_normalize.settings import Settings
from portal_runtime.batch import Message, by_key
from portal_runtime.consumer import Subscription
from portal_runtime.kafka import PermanentError
from portal_runtime.unit_of_work import UnitOfWork

PRODUCER = "normalize"
GROUP = "normalize"
# An article id is a UUID: its text has this length whatever article it names.
_ARTICLE_ID_LENGTH = 36


@dataclass(frozen=True)
class Prepared:
    """What the slow step made of an upsert: the normalised article and its signature."""

    result: Normalized
    signature: tuple[int, ...] | None  # None: too short to compare
    signature_v1: tuple[int, ...] | None = None  # while scheme-1 stories are looked up


class Ingested:
    """The normalize consumer: the slow step per message, then the batch in one transaction."""

    def __init__(
        self,
        media: MediaService | None,
        settings: Settings,
        rules: repository.RulesCache,
        scheme1: repository.Scheme1Stories | None = None,
    ) -> None:
        self.media = media
        self.settings = settings
        self.rules = rules
        self.scheme1 = scheme1  # None: no stories signed by scheme 1 to look up

    def subscription(self) -> Subscription[ArticleIngestedEvent]:
        return Subscription(
            group=GROUP,
            topics=[ARTICLE_INGESTED],
            prepare=self.prepare,
            handler=self.handle,
        )

    async def prepare(self, message: Message[ArticleIngestedEvent]) -> Prepared | None:
        """Text, markup and images of an upsert (CPU and I/O, outside the transaction): the
        CPU steps in one go for an article with no image to fetch, around the fetches
        otherwise."""
        data = message.event.data
        if data.action is not ArticleAction.UPSERT:
            return None
        if data.content is None:
            raise PermanentError("an upsert without content")
        rules = await self.rules.get(data.source)
        v1 = self.scheme1 is not None and await self.scheme1.active()
        step = self._text(data, rules or NO_RULES, v1)
        if isinstance(step, Prepared):
            return step
        assert self.media is not None  # a draft comes back only when it has images to fetch
        outcomes = await self.media.resolve([c.url for c in step.images])
        return self._complete(data, step, outcomes, v1)

    def _text(self, data: ArticleIngested, rules: SourceRules, v1: bool) -> Prepared | Draft:
        """The article prepared; complete unless it has images to fetch first."""
        assert data.content is not None
        draft = prepare(
            data.content,
            rules,
            received_at=data.received_at,
            max_images=self.settings.image_max_per_article,
        )
        if self.media is None:
            return self._complete(data, draft, None, v1)  # images are not fetched: URLs stay
        if not draft.images:
            return self._complete(data, draft, {}, v1)
        return draft

    def _complete(
        self,
        data: ArticleIngested,
        draft: Draft,
        outcomes: dict[str, ImageOutcome] | None,
        v1: bool,
    ) -> Prepared:
        """The article on its images, checked for size, with its near-duplicate signature."""
        result = finish(draft, outcomes, media_base_url=self.settings.media_base_url)
        # The largest the event can be (with a near-duplicate's id): the broker would refuse
        # a bigger one, and the outbox relay would stall behind it.
        # Encoded only when a bound on its text cannot show that it fits (the outbox encodes
        # the event that is sent).
        largest = _event(upsert_data(data, result, "0" * _ARTICLE_ID_LENGTH))
        if not certainly_fits(largest, MAX_EVENT_BYTES):
            size = len(encode(largest))
            if size > MAX_EVENT_BYTES:
                raise PermanentError(
                    f"normalized event of {size} bytes exceeds {MAX_EVENT_BYTES}", "size"
                )
        text = similarity.fingerprint_text(result.article.title, result.article.body_text)
        return Prepared(
            result, similarity.signature(text), similarity_v1.signature(text) if v1 else None
        )

    async def handle(self, batch: list[Message[ArticleIngestedEvent]], uow: UnitOfWork) -> None:
        session = await uow.session()
        groups = by_key(batch, lambda e: e.data.article_id)
        known = await repository.lock_revisions(session, list(groups))
        # The revisions this batch claims, in the order they apply (retractions as None).
        claimed: list[tuple[Message[ArticleIngestedEvent], Prepared | None]] = []
        for article_id, messages in groups.items():
            for message in messages:  # offset order: a check sees the batch's earlier revisions
                data = message.event.data
                if is_newer(data.revision, known.get(article_id)):
                    known[article_id] = data.revision
                    claimed.append((message, message.prepared))
        twins = await _link_in_order(session, claimed)
        emitted: list[tuple[ArticleNormalized, Message[ArticleIngestedEvent]]] = []
        for (message, prepared), twin in zip(claimed, twins, strict=True):
            data = message.event.data
            normalized = (
                retraction_data(data)
                if prepared is None
                else upsert_data(data, prepared.result, twin.article_id if twin else None)
            )
            emitted.append((normalized, message))
            uow.emit(ARTICLE_NORMALIZED.name, _event(normalized), cause=message)
        await repository.claim_revisions(
            session, [(normalized, message.event.event_id) for normalized, message in emitted]
        )


async def _link_in_order(
    session: AsyncSession,
    claimed: list[tuple[Message[ArticleIngestedEvent], Prepared | None]],
) -> list[repository.Twin | None]:
    """Each claimed upsert's near-duplicate (None for a retraction): the upserts between two
    retractions linked in one statement, a retraction forgetting its article in its place."""
    twins: list[repository.Twin | None] = []
    run: list[repository.Fingerprinted] = []
    for message, prepared in claimed:
        data = message.event.data
        if prepared is not None:
            run.append(
                repository.Fingerprinted(
                    data.article_id, data.source, prepared.signature, prepared.signature_v1
                )
            )
            continue
        twins += await repository.link_duplicates(session, run)
        run = []
        await repository.forget_fingerprint(session, data.article_id)
        twins.append(None)
    twins += await repository.link_duplicates(session, run)
    return twins


def _event(normalized: ArticleNormalized) -> ArticleNormalizedEvent:
    return ArticleNormalizedEvent(producer=PRODUCER, subject=normalized.article_id, data=normalized)
