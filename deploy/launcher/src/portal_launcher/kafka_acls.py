"""Which Kafka rights each service gets, derived from the contracts' topic registry (pure).

A service's principal is ``User:<service>``. It may
- write (and describe) the topics it produces, including the dead-letter topics of the topics it
  consumes (the registry lists those as the dead-letter topics' producers);
- read (and describe) the topics it consumes or replays;
- use the consumer groups named after it: ``<service>`` and ``<service>-...``;
- for the partner topic consumers (ingest): read and create ``partner.*`` topics and administer
  the partners' SCRAM users, ACLs and quotas (cluster ALTER and ALTER_CONFIGS). Kafka has no
  narrower right to create ACLs, so this principal could grant itself more: it is the one
  service trusted with partner administration (README, "Least privilege").
Nothing else: no other topic, group, transactional id or cluster right. The same list feeds the
local stack (applied at ``portal stack up``) and docker-compose (``deploy/compose/kafka-acls.txt``,
written by ``compose_files``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from portal_contracts.topics import (
    ALL_TOPICS,
    PARTNER_TOPIC_CONSUMERS,
    PARTNER_TOPIC_PREFIX,
    TopicSpec,
)

CLUSTER = "kafka-cluster"


@dataclass(frozen=True, order=True)
class Grant:
    """One ALLOW ACL binding (any host): the principal may do ``operation`` on the resource."""

    principal: str  # "User:<name>"
    resource_type: str  # TOPIC | GROUP | CLUSTER
    pattern_type: str  # LITERAL | PREFIXED
    resource_name: str
    operation: str  # READ | WRITE | CREATE | DESCRIBE | ALTER | ALTER_CONFIGS | DESCRIBE_CONFIGS

    def line(self) -> str:
        """``principal resource_type pattern_type name operation`` (one line of kafka-acls.txt)."""
        return " ".join(
            (self.principal, self.resource_type, self.pattern_type, self.resource_name,
             self.operation)
        )  # fmt: skip


def principal(service: str) -> str:
    return f"User:{service}"


def _topic(service: str, name: str, *operations: str, prefixed: bool = False) -> list[Grant]:
    pattern = "PREFIXED" if prefixed else "LITERAL"
    return [Grant(principal(service), "TOPIC", pattern, name, op) for op in operations]


def service_grants(service: str, topics: Iterable[TopicSpec] = ALL_TOPICS) -> list[Grant]:
    """Every right ``service`` needs, and only those (sorted, without repeats)."""
    grants: set[Grant] = set()
    consumes = False
    for spec in topics:
        if service in spec.producers:
            grants.update(_topic(service, spec.name, "WRITE", "DESCRIBE"))
        if service in spec.consumers or service in spec.readers:
            grants.update(_topic(service, spec.name, "READ", "DESCRIBE"))
        consumes = consumes or service in spec.consumers
    if service in PARTNER_TOPIC_CONSUMERS:
        consumes = True
        grants.update(
            _topic(service, PARTNER_TOPIC_PREFIX, "READ", "DESCRIBE", "CREATE", prefixed=True)
        )
        grants.update(
            Grant(principal(service), "CLUSTER", "LITERAL", CLUSTER, op)
            for op in ("ALTER", "ALTER_CONFIGS")
        )
    if consumes:
        grants.add(Grant(principal(service), "GROUP", "LITERAL", service, "READ"))
        grants.add(Grant(principal(service), "GROUP", "PREFIXED", f"{service}-", "READ"))
    return sorted(grants)


def all_grants(
    services: Iterable[str], topics: Iterable[TopicSpec] = ALL_TOPICS
) -> dict[str, list[Grant]]:
    specs = list(topics)
    return {service: service_grants(service, specs) for service in services}
