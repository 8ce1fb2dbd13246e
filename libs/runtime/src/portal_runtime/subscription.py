"""What a consumer group consumes and does with a batch, and the settings a consumer runs with."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from portal_contracts.codec import decode
from portal_contracts.topics import TopicSpec
from portal_runtime.batch import (
    Message,
    Record,
    RetryPolicy,
)
from portal_runtime.kafka_security import client_options
from portal_runtime.settings import ServiceSettings
from portal_runtime.unit_of_work import DeadLetterWriter, UnitOfWork

E = TypeVar("E")


Handler = Callable[[list[Message[E]], UnitOfWork], Awaitable[None]]


Prepare = Callable[[Message[E]], Awaitable[Any]]


Decoder = Callable[[Record], E]


@dataclass(frozen=True)
class Subscription(Generic[E]):
    """What one consumer group of a service consumes, and what it does with a batch.

    ``topics`` are decoded as their contract's event (``TopicSpec.model``); a ``pattern``
    subscription (partner topics) brings its own ``decode``, which raises ``PermanentError``
    or ``DecodeError`` for a record it refuses.
    """

    group: str
    handler: Handler[E]
    topics: Sequence[TopicSpec] = ()
    pattern: str | None = None
    decode: Decoder[E] | None = None
    # The slow step of one message, before the transaction (its result: ``message.prepared``).
    prepare: Prepare[E] | None = None
    # Drop messages whose event id this service processed before (needs envelope events):
    # every topic's (True), none (False), or only those of the topics named (the others are
    # idempotent by themselves, e.g. by revision).
    inbox: bool | Collection[str] = True
    # Where rejections go (default: ``<topic>.dlq`` through the outbox, once per record).
    dead_letters: DeadLetterWriter | None = None
    # False for a consumer of dead letters: a message it cannot handle is logged and skipped.
    dead_letter_poison: bool = True
    # Refreshes topic metadata this often (a pattern picks up new topics within it).
    metadata_max_age_ms: int = 300_000

    @property
    def name(self) -> str:
        return self.pattern or ",".join(t.name for t in self.topics)

    def uses_inbox(self, topic: str) -> bool:
        """Whether messages of ``topic`` go through the inbox."""
        return self.inbox if isinstance(self.inbox, bool) else topic in self.inbox

    def decoder(self) -> Decoder[E]:
        if self.decode is not None:
            return self.decode
        models = {t.name: t.model for t in self.topics}

        def by_contract(record: Record) -> Any:
            return decode(record.value, expected=models[record.topic])

        return by_contract


def by_topic(handlers: Mapping[str, Handler[Any]]) -> Handler[Any]:
    """One handler for a subscription over several topics: each topic's messages (in batch
    order) to its own handler, in the order of ``handlers``, all in the batch's one transaction.
    One consumer for a group's topics means one fetch, one heartbeat and one offset commit
    where a consumer per topic would make one each."""

    async def handle(batch: list[Message[Any]], uow: UnitOfWork) -> None:
        for topic_name, handler in handlers.items():
            part = [m for m in batch if m.record.topic == topic_name]
            if part:
                await handler(part, uow)

    return handle


@dataclass(frozen=True)
class ConsumerConfig:
    """The settings a consumer runs with (from ``ServiceSettings``)."""

    bootstrap_servers: str
    client_id: str
    producer: str  # the service name, as dead letters name it
    max_records: int = 500
    max_wait_s: float = 0.02
    slow_step_concurrency: int = 8
    commit_interval_s: float = 1.0
    drain_s: float = 10.0
    max_poll_interval_ms: int = 300_000
    heartbeat_interval_ms: int = 1_000
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    # How the service signs in (kafka_security.client_options, without the address).
    security: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> ConsumerConfig:
        return cls(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            client_id=settings.instance_id,  # group members name their process
            producer=settings.service_name,
            max_records=settings.kafka_batch_max_records,
            max_wait_s=settings.kafka_batch_max_wait_ms / 1000,
            slow_step_concurrency=settings.kafka_batch_slow_step_concurrency,
            commit_interval_s=settings.kafka_commit_interval_ms / 1000,
            drain_s=settings.kafka_rebalance_drain_s,
            max_poll_interval_ms=settings.kafka_max_poll_interval_ms,
            heartbeat_interval_ms=settings.kafka_heartbeat_interval_ms,
            security={
                k: v for k, v in client_options(settings).items() if k != "bootstrap_servers"
            },
        )
