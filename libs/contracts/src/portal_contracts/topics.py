"""The topic registry: every Kafka topic the portal uses, with its key, layout and model.

Services name topics only through this module, never as bare strings. The local stack creates
the topics from here, and the JSON Schemas and AsyncAPI document are generated from here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from portal_contracts.articles import (
    ArticleIngestedEvent,
    ArticleNormalizedEvent,
    ArticlePublishedEvent,
    ArticleReviewedEvent,
)
from portal_contracts.deadletter import DeadLetterEvent
from portal_contracts.envelope import Envelope
from portal_contracts.questions import QuestionAnsweredEvent, QuestionSubmittedEvent
from portal_contracts.submissions import (
    SubmissionModeratedEvent,
    SubmissionReportedEvent,
    SubmissionSubmittedEvent,
)

DAY_MS = 24 * 3600 * 1000
# Events carry whole articles; broker, topics and producers all allow this size.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class TopicSpec:
    name: str
    model: type[Envelope]
    key: str
    description: str
    partitions: int = 6
    retention_ms: int | None = 14 * DAY_MS  # None: keep forever
    compacted: bool = False
    # Who may do what with the topic: the broker's ACLs are derived from these (each service
    # gets exactly the topics and consumer groups it uses), so they must be complete.
    producers: tuple[str, ...] = ()
    consumers: tuple[str, ...] = ()  # in consumer groups named after the service
    # Services that read the whole topic without a consumer group (rebuilding a store).
    readers: tuple[str, ...] = ()
    extra_config: dict[str, str] = field(default_factory=dict)

    @property
    def config(self) -> dict[str, str]:
        cfg = {
            "cleanup.policy": "compact" if self.compacted else "delete",
            "retention.ms": "-1" if self.retention_ms is None else str(self.retention_ms),
            "min.insync.replicas": "1",
            "max.message.bytes": str(MAX_MESSAGE_BYTES),
        }
        cfg.update(self.extra_config)
        return cfg

    @property
    def dead_letter_topic(self) -> str:
        return dead_letter_topic(self.name)


def dead_letter_topic(topic: str) -> str:
    return f"{topic}.dlq"


ARTICLE_INGESTED = TopicSpec(
    name="article.ingested",
    model=ArticleIngestedEvent,
    key="article_id",
    description="An article (create, update or retract) as received from a partner agency.",
    producers=("ingest",),
    consumers=("normalize", "moderation", "ingest"),
)
ARTICLE_NORMALIZED = TopicSpec(
    name="article.normalized",
    model=ArticleNormalizedEvent,
    key="article_id",
    description="An article after repair of markup, encodings and images, with a quality report.",
    producers=("normalize",),
    consumers=("moderation", "ingest"),
)
ARTICLE_REVIEWED = TopicSpec(
    name="article.reviewed",
    model=ArticleReviewedEvent,
    key="article_id",
    description="An editor's (or a trust policy's) decision on an article revision.",
    producers=("moderation",),
    consumers=("publishing", "ingest"),
)
ARTICLE_PUBLISHED = TopicSpec(
    name="article.published",
    model=ArticlePublishedEvent,
    key="article_id",
    description=(
        "The public state of an article (published or retracted). Compacted and kept forever: "
        "every read model can be rebuilt by replaying it."
    ),
    retention_ms=None,
    compacted=True,
    producers=("publishing",),
    # publishing: its edge purger (python -m portal_publishing.purger), which purges the edge.
    consumers=("search", "ingest", "engagement", "publishing"),
    readers=("publishing",),
)
QUESTION_SUBMITTED = TopicSpec(
    name="question.submitted",
    model=QuestionSubmittedEvent,
    key="question_id",
    description="A question from the public (Q&A or a dialogue), without contact details.",
    producers=("engagement",),
    consumers=("moderation",),
)
QUESTION_ANSWERED = TopicSpec(
    name="question.answered",
    model=QuestionAnsweredEvent,
    key="question_id",
    description="A reviewed answer to a question, ready for the public. Compacted, kept forever.",
    retention_ms=None,
    compacted=True,
    producers=("moderation",),
    consumers=("engagement", "search"),
)
SUBMISSION_SUBMITTED = TopicSpec(
    name="submission.submitted",
    model=SubmissionSubmittedEvent,
    key="submission_id",
    description=(
        "Feedback, a forum thread or reply, or an article comment from the public, screened and "
        "without contact details; every one waits for moderation."
    ),
    producers=("engagement",),
    consumers=("moderation",),
)
SUBMISSION_MODERATED = TopicSpec(
    name="submission.moderated",
    model=SubmissionModeratedEvent,
    key="submission_id",
    description=(
        "A moderation step of any submission (accepted, routed, picked, answered, published, "
        "rejected, withdrawn): what the public sees and the submitter's status link shows."
    ),
    producers=("moderation",),
    consumers=("engagement",),
)
SUBMISSION_REPORTED = TopicSpec(
    name="submission.reported",
    model=SubmissionReportedEvent,
    key="submission_id",
    description="A reader reported a published forum post or comment: editors look again.",
    producers=("engagement",),
    consumers=("moderation",),
)

EVENT_TOPICS: tuple[TopicSpec, ...] = (
    ARTICLE_INGESTED,
    ARTICLE_NORMALIZED,
    ARTICLE_REVIEWED,
    ARTICLE_PUBLISHED,
    QUESTION_SUBMITTED,
    QUESTION_ANSWERED,
    SUBMISSION_SUBMITTED,
    SUBMISSION_MODERATED,
    SUBMISSION_REPORTED,
)

# Partner agencies that produce directly write to one topic each, on the SASL_SSL (SCRAM) listener.
PARTNER_TOPIC_PREFIX = "partner."
# Services that consume every partner topic (by pattern) and provision new ones.
PARTNER_TOPIC_CONSUMERS: tuple[str, ...] = ("ingest",)
PARTNER_TOPIC_PATTERN = re.compile(r"^partner\.([a-z0-9][a-z0-9-]*)\.articles$")
PARTNER_DEAD_LETTERS = "partner.articles.dlq"


def partner_topic(source: str) -> str:
    return f"{PARTNER_TOPIC_PREFIX}{source}.articles"


def source_of_partner_topic(topic: str) -> str | None:
    """The agency a partner topic belongs to: identity comes from the topic, never the payload."""
    match = PARTNER_TOPIC_PATTERN.match(topic)
    return match.group(1) if match else None


# Dead-letter topics the editors' desk records (per-source integration health).
_DESK_DEAD_LETTERS = frozenset(
    {PARTNER_DEAD_LETTERS, ARTICLE_INGESTED.dead_letter_topic, ARTICLE_NORMALIZED.dead_letter_topic}
)


def _dead_letter_spec(name: str, description: str, producers: tuple[str, ...]) -> TopicSpec:
    return TopicSpec(
        name=name,
        model=DeadLetterEvent,
        key="original key",
        description=description,
        partitions=1,
        retention_ms=30 * DAY_MS,
        producers=producers,
        consumers=("moderation",) if name in _DESK_DEAD_LETTERS else (),
    )


DEAD_LETTER_TOPICS: tuple[TopicSpec, ...] = (
    *(
        _dead_letter_spec(
            t.dead_letter_topic,
            f"Messages of {t.name} a consumer could not process.",
            producers=t.consumers,  # each consumer dead-letters what it cannot process
        )
        for t in EVENT_TOPICS
    ),
    _dead_letter_spec(
        PARTNER_DEAD_LETTERS,
        "Partner messages that failed validation, with the reason.",
        producers=PARTNER_TOPIC_CONSUMERS,
    ),
)

ALL_TOPICS: tuple[TopicSpec, ...] = EVENT_TOPICS + DEAD_LETTER_TOPICS

_BY_NAME = {t.name: t for t in ALL_TOPICS}


def topic(name: str) -> TopicSpec:
    return _BY_NAME[name]
