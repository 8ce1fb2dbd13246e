"""Partner provisioning on the broker: the agency's topic, SCRAM user, ACLs and produce quota.

aiokafka's admin client has neither AlterUserScramCredentials nor CreateAcls, so this adapter uses
kafka-python's (blocking) admin client, in a thread, as ingest's own principal (its ACLs allow
creating partner topics and administering partner users). Every step is idempotent, so a failed
call can simply be repeated.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from kafka.admin import (
    ACL,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    KafkaAdminClient,
    ResourcePattern,
    ResourceType,
    UserScramCredentialUpsertion,
)
from kafka.errors import for_code
from kafka.protocol.admin import AlterClientQuotasRequest

from portal_contracts.topics import partner_topic
from portal_ingest.domain import kafka_username, new_kafka_password
from portal_ingest.settings import Settings
from portal_runtime.kafka_security import client_options

SCRAM_MECHANISM = "SCRAM-SHA-512"
_TOPIC_ALREADY_EXISTS = 36
# Room for a message of max_body_bytes plus Kafka's record overhead.
_RECORD_OVERHEAD = 64 * 1024


class ProvisioningError(RuntimeError):
    """The broker refused or did not answer; the reason is meant for an operator."""


@dataclass(frozen=True)
class PartnerGrant:
    username: str
    password: str
    topic: str


class PartnerKafkaProvisioner:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def grant(self, source: str) -> PartnerGrant:
        """Create (or keep) the topic and ACLs, and set a new password for the agency's user."""
        grant = PartnerGrant(
            username=kafka_username(source),
            password=new_kafka_password(),
            topic=partner_topic(source),
        )
        await asyncio.to_thread(self._grant, grant)
        return grant

    def _client(self) -> KafkaAdminClient:
        return KafkaAdminClient(
            **client_options(self.settings),
            client_id=f"{self.settings.service_name}-provisioning",
            request_timeout_ms=self.settings.kafka_admin_timeout_ms,
        )

    def _grant(self, grant: PartnerGrant) -> None:
        try:
            admin = self._client()
        except Exception as exc:
            raise ProvisioningError(f"Kafka admin connection failed: {exc}") from exc
        try:
            self._ensure_topic(admin, grant.topic)
            self._set_password(admin, grant.username, grant.password)
            self._allow_topic(admin, grant.username, grant.topic)
            self._limit_produce_rate(admin, grant.username, self.settings.partner_produce_byte_rate)
        except ProvisioningError:
            raise
        except Exception as exc:
            raise ProvisioningError(f"Kafka provisioning failed: {exc!r}") from exc
        finally:
            admin.close()

    def _ensure_topic(self, admin: KafkaAdminClient, topic: str) -> None:
        s = self.settings
        result: dict[str, Any] = admin.create_topics(
            {
                topic: {
                    "num_partitions": s.partner_topic_partitions,
                    "replication_factor": s.partner_topic_replication_factor,
                    "configs": {
                        "cleanup.policy": "delete",
                        "retention.ms": str(s.partner_topic_retention_ms),
                        "max.message.bytes": str(s.max_body_bytes + _RECORD_OVERHEAD),
                    },
                }
            },
            timeout_ms=s.kafka_admin_timeout_ms,
            raise_errors=False,
        )
        for item in result["topics"]:
            if item["error_code"] not in (0, _TOPIC_ALREADY_EXISTS):
                raise ProvisioningError(
                    f"could not create topic {topic}: error {item['error_code']} "
                    f"{item.get('error_message') or ''}".strip()
                )

    @staticmethod
    def _set_password(admin: KafkaAdminClient, username: str, password: str) -> None:
        errors: dict[str, str | None] = admin.alter_user_scram_credentials(
            [UserScramCredentialUpsertion(username, SCRAM_MECHANISM, password)]
        )
        if errors.get(username):
            raise ProvisioningError(f"could not set the SCRAM user {username}: {errors[username]}")

    @staticmethod
    def _allow_topic(admin: KafkaAdminClient, username: str, topic: str) -> None:
        # Exactly this topic (literal pattern): WRITE to produce, DESCRIBE for its metadata.
        pattern = ResourcePattern(ResourceType.TOPIC, topic, ACLResourcePatternType.LITERAL)
        acls = [
            ACL(
                principal=f"User:{username}",
                host="*",
                operation=operation,
                permission_type=ACLPermissionType.ALLOW,
                resource_pattern=pattern,
            )
            for operation in (ACLOperation.WRITE, ACLOperation.DESCRIBE)
        ]
        result: dict[str, Any] = admin.create_acls(acls)
        if result.get("failed"):
            raise ProvisioningError(f"could not create ACLs for {username}: {result['failed']}")

    @staticmethod
    def _limit_produce_rate(admin: KafkaAdminClient, username: str, byte_rate: int) -> None:
        """A client quota on the partner's user: the broker throttles (delays) its produce
        requests beyond ``byte_rate`` bytes per second, so one agency cannot flood the broker."""
        # kafka-python has the protocol message but no admin method for it (yet).
        request = AlterClientQuotasRequest(
            entries=[
                AlterClientQuotasRequest.EntryData(
                    entity=[
                        AlterClientQuotasRequest.EntryData.EntityData(
                            entity_type="user", entity_name=username
                        )
                    ],
                    ops=[
                        AlterClientQuotasRequest.EntryData.OpData(
                            key="producer_byte_rate", value=float(byte_rate), remove=False
                        )
                    ],
                )
            ],
            validate_only=False,
        )
        manager = admin._manager
        response: Any = manager.run(manager.send, request)
        for entry in response.entries:
            if entry.error_code:
                raise ProvisioningError(
                    f"could not set the produce quota of {username}: "
                    f"{for_code(entry.error_code).__name__} {entry.error_message or ''}".strip()
                )
