"""The Kafka rights each service gets, derived from the topic registry (pure, no broker)."""

from __future__ import annotations

from pathlib import Path

from portal_contracts.topics import (
    ALL_TOPICS,
    ARTICLE_INGESTED,
    ARTICLE_NORMALIZED,
    ARTICLE_PUBLISHED,
    DEAD_LETTER_TOPICS,
    EVENT_TOPICS,
    PARTNER_DEAD_LETTERS,
    QUESTION_ANSWERED,
    TopicSpec,
)
from portal_launcher.compose_files import rendered
from portal_launcher.kafka_acls import Grant, all_grants, service_grants
from portal_launcher.services import BACKENDS
from portal_moderation.deadletters import DEAD_LETTER_TOPICS as DESK_DEAD_LETTERS

ROOT = Path(__file__).resolve().parents[3]


def _topics(grants: list[Grant], operation: str) -> set[str]:
    return {
        g.resource_name for g in grants if g.resource_type == "TOPIC" and g.operation == operation
    }


def test_normalize_gets_exactly_its_input_its_output_and_its_dead_letters() -> None:
    grants = service_grants("normalize")
    user = "User:normalize"
    assert set(grants) == {
        Grant(user, "TOPIC", "LITERAL", ARTICLE_INGESTED.name, "READ"),
        Grant(user, "TOPIC", "LITERAL", ARTICLE_INGESTED.name, "DESCRIBE"),
        Grant(user, "TOPIC", "LITERAL", ARTICLE_NORMALIZED.name, "WRITE"),
        Grant(user, "TOPIC", "LITERAL", ARTICLE_NORMALIZED.name, "DESCRIBE"),
        Grant(user, "TOPIC", "LITERAL", ARTICLE_INGESTED.dead_letter_topic, "WRITE"),
        Grant(user, "TOPIC", "LITERAL", ARTICLE_INGESTED.dead_letter_topic, "DESCRIBE"),
        Grant(user, "GROUP", "LITERAL", "normalize", "READ"),
        Grant(user, "GROUP", "PREFIXED", "normalize-", "READ"),
    }


def test_every_producer_writes_and_every_consumer_reads_and_dead_letters() -> None:
    for spec in EVENT_TOPICS:
        for service in spec.producers:
            assert spec.name in _topics(service_grants(service), "WRITE"), (service, spec.name)
        for service in spec.consumers:
            grants = service_grants(service)
            assert spec.name in _topics(grants, "READ"), (service, spec.name)
            assert spec.dead_letter_topic in _topics(grants, "WRITE"), (service, spec.name)


def test_no_service_writes_what_it_does_not_produce_or_reads_what_it_does_not_use() -> None:
    for service in BACKENDS:
        grants = service_grants(service)
        writes = {t.name for t in ALL_TOPICS if service in t.producers}
        reads = {t.name for t in ALL_TOPICS if service in t.consumers or service in t.readers}
        literal = [g for g in grants if g.pattern_type == "LITERAL"]
        assert _topics(literal, "WRITE") == writes, service
        assert _topics(literal, "READ") == reads, service


def test_a_rebuild_reads_its_own_changelog_without_a_group() -> None:
    # Publishing rebuilds its store from article.published, which it produces.
    grants = service_grants("publishing")
    assert ARTICLE_PUBLISHED.name in _topics(grants, "READ")
    assert ARTICLE_PUBLISHED.name in _topics(grants, "WRITE")
    assert QUESTION_ANSWERED.name in _topics(service_grants("search"), "READ")


def test_only_the_partner_consumer_administers_partner_topics_and_users() -> None:
    ingest = service_grants("ingest")
    assert {
        (g.pattern_type, g.resource_name, g.operation)
        for g in ingest
        if g.pattern_type == "PREFIXED" and g.resource_type == "TOPIC"
    } == {
        ("PREFIXED", "partner.", "READ"),
        ("PREFIXED", "partner.", "DESCRIBE"),
        ("PREFIXED", "partner.", "CREATE"),
    }
    assert {g.operation for g in ingest if g.resource_type == "CLUSTER"} == {
        "ALTER",
        "ALTER_CONFIGS",
    }
    assert PARTNER_DEAD_LETTERS in _topics(ingest, "WRITE")
    for service in set(BACKENDS) - {"ingest"}:
        grants = service_grants(service)
        assert not [g for g in grants if g.resource_type == "CLUSTER"], service
        assert not [
            g for g in grants if g.pattern_type == "PREFIXED" and g.resource_type == "TOPIC"
        ]


def test_groups_are_named_after_their_service() -> None:
    for service, grants in all_grants(BACKENDS).items():
        groups = {(g.pattern_type, g.resource_name) for g in grants if g.resource_type == "GROUP"}
        assert groups == {("LITERAL", service), ("PREFIXED", f"{service}-")}, service


def test_a_service_the_registry_does_not_name_gets_nothing() -> None:
    assert service_grants("web") == []
    lone = TopicSpec(name="x.y", model=ARTICLE_INGESTED.model, key="k", description="")
    assert service_grants("normalize", [lone]) == []


def test_the_desk_reads_the_dead_letter_topics_the_registry_gives_it() -> None:
    mine = {t.name for t in DEAD_LETTER_TOPICS if "moderation" in t.consumers}
    assert set(DESK_DEAD_LETTERS) == mine
    assert {PARTNER_DEAD_LETTERS, ARTICLE_INGESTED.dead_letter_topic} <= mine
    assert mine <= _topics(service_grants("moderation"), "READ")


def test_compose_applies_the_same_topics_acls_and_policies() -> None:
    for path, content in rendered().items():
        assert path.exists() and path.read_text() == content, (
            f"{path.relative_to(ROOT)} is stale: run "
            "`uv run --no-sync python -m portal_launcher.compose_files`"
        )
