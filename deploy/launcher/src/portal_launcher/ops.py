"""Repair and replay, the pure part: consumer lag, dead-letter summaries, what a redrive sends.

No I/O here: ``ops_kafka`` reads offsets and records and hands them to these functions, then
produces and commits what they decide.

A redrive remembers its progress per dead-letter topic and failed consumer group in a consumer
group of its own, ``portal-redrive.<dead-letter topic>.<failed group>``, on the dead-letter
topic: the committed offset is a watermark (every dead letter of that group below it was
redriven) and the commit's metadata lists the offsets above it already redriven (the holes come
from ``--reason-contains``, which leaves the other dead letters pending). A second run therefore
sends nothing new.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from portal_contracts.deadletter import DeadLetter
from portal_contracts.topics import (
    ALL_TOPICS,
    DEAD_LETTER_TOPICS,
    PARTNER_DEAD_LETTERS,
    PARTNER_TOPIC_PATTERN,
    dead_letter_topic,
)

REDRIVE_GROUP_PREFIX = "portal-redrive."
REDRIVEN_FROM_HEADER = "portal-redriven-from"
_MARK_VERSION = "r1:"
# Kafka's offset.metadata.max.bytes defaults to 4096; stay well below it.
MAX_MARK_METADATA = 3500


# --- consumer lag --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PartitionLag:
    group: str
    topic: str
    partition: int
    committed: int | None  # None: the group never committed on this partition
    end: int
    begin: int

    @property
    def lag(self) -> int:
        # Without a commit the group starts from the beginning (auto_offset_reset=earliest).
        start = self.begin if self.committed is None else max(self.committed, self.begin)
        return max(0, self.end - start)


def lag_rows(
    group: str,
    committed: dict[tuple[str, int], int | None],
    begins: dict[tuple[str, int], int],
    ends: dict[tuple[str, int], int],
) -> list[PartitionLag]:
    """One row per partition of every topic the group has committed on (all its partitions)."""
    topics = {topic for topic, _ in committed}
    rows = [
        PartitionLag(
            group, topic, p, committed.get((topic, p)), ends[(topic, p)], begins[(topic, p)]
        )
        for (topic, p) in ends
        if topic in topics
    ]
    return sorted(rows, key=lambda r: (r.group, r.topic, r.partition))


@dataclass(frozen=True)
class LagTotal:
    group: str
    topic: str
    lag: int
    partitions: int


def lag_totals(rows: Iterable[PartitionLag]) -> list[LagTotal]:
    lag: Counter[tuple[str, str]] = Counter()
    parts: Counter[tuple[str, str]] = Counter()
    for r in rows:
        lag[(r.group, r.topic)] += r.lag
        parts[(r.group, r.topic)] += 1
    return [LagTotal(g, t, lag[(g, t)], parts[(g, t)]) for g, t in sorted(parts)]


def lag_table(rows: Sequence[PartitionLag]) -> str:
    gw = max([len("group"), *(len(r.group) for r in rows)])
    tw = max([len("topic"), *(len(r.topic) for r in rows)])
    lines = [
        f"{'group':<{gw}} {'topic':<{tw}} {'part':>4} {'committed':>10} {'end':>10} {'lag':>8}"
    ]
    for r in rows:
        committed = "-" if r.committed is None else str(r.committed)
        lines.append(
            f"{r.group:<{gw}} {r.topic:<{tw}} {r.partition:>4} {committed:>10} {r.end:>10} {r.lag:>8}"
        )
    lines.append("")
    lines.append(f"{'group':<{gw}} {'topic':<{tw}} {'total lag':>10}")
    for t in lag_totals(rows):
        lines.append(f"{t.group:<{gw}} {t.topic:<{tw}} {t.lag:>10}")
    lines.append(f"{'all':<{gw}} {'':<{tw}} {sum(r.lag for r in rows):>10}")
    return "\n".join(lines)


def lag_json(rows: Sequence[PartitionLag]) -> str:
    return json.dumps(
        {
            "partitions": [{**r.__dict__, "lag": r.lag} for r in rows],
            "totals": [t.__dict__ for t in lag_totals(rows)],
            "total": sum(r.lag for r in rows),
        },
        indent=2,
    )


# --- dead letters ----------------------------------------------------------------------------


class UnknownTopic(ValueError):
    pass


def resolve_dead_letter_topic(name: str) -> str:
    """A dead-letter topic of the registry, named as itself or by the topic it collects for."""
    dlqs = {t.name for t in DEAD_LETTER_TOPICS}
    if name in dlqs:
        return name
    if PARTNER_TOPIC_PATTERN.match(name):
        return PARTNER_DEAD_LETTERS
    if name in {t.name for t in ALL_TOPICS} and dead_letter_topic(name) in dlqs:
        return dead_letter_topic(name)
    raise UnknownTopic(f"{name!r} is no dead-letter topic; one of: {', '.join(sorted(dlqs))}")


def belongs_to(dlq: str, original_topic: str) -> bool:
    """Whether a dead letter in ``dlq`` may go back to ``original_topic`` (never elsewhere: a
    forged record must not make the redrive write to any topic it names)."""
    if dlq == PARTNER_DEAD_LETTERS:
        return PARTNER_TOPIC_PATTERN.match(original_topic) is not None
    return dead_letter_topic(original_topic) == dlq


@dataclass(frozen=True)
class DeadLetterRecord:
    partition: int
    offset: int
    letter: DeadLetter | None  # None: not a valid dead-letter event (cannot be redriven)


def redrive_group_id(dlq: str, failed_group: str) -> str:
    return f"{REDRIVE_GROUP_PREFIX}{dlq}.{failed_group}"


@dataclass(frozen=True)
class Mark:
    """Redrive progress of one failed group on one partition of a dead-letter topic."""

    next_offset: int = 0
    done: frozenset[int] = frozenset()


def encode_mark(mark: Mark) -> str:
    """The commit metadata: the offsets at or above the watermark already redriven, as ranges."""
    ranges: list[str] = []
    for start, end in _ranges(sorted(mark.done)):
        ranges.append(str(start) if start == end else f"{start}-{end}")
    return _MARK_VERSION + ",".join(ranges)


def decode_mark(offset: int, metadata: str | None) -> Mark:
    done: set[int] = set()
    if metadata and metadata.startswith(_MARK_VERSION):
        for part in filter(None, metadata[len(_MARK_VERSION) :].split(",")):
            start, _, end = part.partition("-")
            done.update(range(int(start), int(end or start) + 1))
    return Mark(offset, frozenset(o for o in done if o >= offset))


def _ranges(offsets: list[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for o in offsets:
        if out and out[-1][1] == o - 1:
            out[-1] = (out[-1][0], o)
        else:
            out.append((o, o))
    return out


class RedriveStateTooLarge(RuntimeError):
    pass


@dataclass
class RedrivePlan:
    dlq: str
    failed_group: str
    send: list[DeadLetterRecord] = field(default_factory=list)
    already: int = 0  # redriven by an earlier run
    left: int = 0  # not selected (--reason-contains): still pending
    marks: dict[int, Mark] = field(default_factory=dict)

    @property
    def group_id(self) -> str:
        return redrive_group_id(self.dlq, self.failed_group)


def plan_redrive(
    dlq: str,
    records: Sequence[DeadLetterRecord],
    ends: dict[int, int],
    marks: dict[int, Mark],
    failed_group: str,
    reason_contains: str | None = None,
) -> RedrivePlan:
    """What to send for one failed consumer group, and the progress to commit after sending."""
    plan = RedrivePlan(dlq, failed_group)
    needle = reason_contains.casefold() if reason_contains else None
    for partition, end in sorted(ends.items()):
        mark = marks.get(partition, Mark())
        holes: list[int] = []
        sent: set[int] = set()
        for rec in records:
            if rec.partition != partition or rec.offset >= end:
                continue
            letter = rec.letter
            if letter is None or letter.consumer_group != failed_group:
                continue
            if not belongs_to(dlq, letter.original_topic):
                continue  # never sent anywhere; counted as invalid by the summary
            if not redrivable(letter):
                continue  # an outbox row set aside: its bytes are in the service's outbox_dead
            if rec.offset < mark.next_offset or rec.offset in mark.done:
                plan.already += 1
            elif needle is None or needle in letter.reason.casefold():
                plan.send.append(rec)
                sent.add(rec.offset)
            else:
                plan.left += 1
                holes.append(rec.offset)
        watermark = min(holes) if holes else max(end, mark.next_offset)
        new = Mark(watermark, frozenset(o for o in mark.done | sent if o >= watermark))
        if len(encode_mark(new)) > MAX_MARK_METADATA:
            raise RedriveStateTooLarge(
                f"too many scattered dead letters of {failed_group} to remember on {dlq}; "
                "redrive the pending ones first (a wider --reason-contains, or none)"
            )
        plan.marks[partition] = new
    return plan


def redrivable(letter: DeadLetter) -> bool:
    """Whether the dead letter holds a message that was on its topic (an outbox row a service
    set aside as never sendable has no partition: there is nothing here to send back)."""
    return letter.original_partition >= 0


def failed_groups(records: Iterable[DeadLetterRecord]) -> list[str]:
    return sorted({r.letter.consumer_group for r in records if r.letter is not None})


def redrive_headers(rec: DeadLetterRecord, dlq: str) -> list[tuple[str, bytes]]:
    """The original headers, byte for byte, plus where this copy came from (for the trail)."""
    assert rec.letter is not None
    headers: list[tuple[str, bytes]] = []
    for key, value in rec.letter.original_headers.items():
        try:
            headers.append((key, base64.b64decode(value, validate=True)))
        except (binascii.Error, ValueError):
            headers.append((key, value.encode()))
    headers.append((REDRIVEN_FROM_HEADER, f"{dlq}/{rec.partition}/{rec.offset}".encode()))
    return headers


@dataclass(frozen=True)
class DeadLetterCount:
    dlq: str
    consumer_group: str
    error_type: str
    reason: str
    count: int


REASON_CHARS = 100


def summarize(dlq: str, records: Iterable[DeadLetterRecord]) -> list[DeadLetterCount]:
    """Counts per failed consumer group and reason (reasons cut to their first characters)."""
    counts: Counter[tuple[str, str, str]] = Counter()
    for rec in records:
        if rec.letter is None:
            counts[("?", "invalid", "not a dead-letter event")] += 1
        elif not belongs_to(dlq, rec.letter.original_topic):
            counts[(rec.letter.consumer_group, "invalid", "original topic outside this dlq")] += 1
        else:
            reason = " ".join(rec.letter.reason.split())[:REASON_CHARS]
            counts[(rec.letter.consumer_group, rec.letter.error_type, reason)] += 1
    return [
        DeadLetterCount(dlq, g, e, r, n)
        for (g, e, r), n in sorted(counts.items(), key=lambda kv: (kv[0][0], -kv[1], kv[0][2]))
    ]
