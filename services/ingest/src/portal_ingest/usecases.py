"""The ingest use cases besides the intake (intake_usecases.py): how a refusal is told, what
the pipeline reports of each item (the partner's status view), operators' administration and
the desk's images. Each loads state, asks domain.py what to do and commits the result in one
transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from minio.error import S3Error
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portal_ingest import desk_images, domain
from portal_ingest import repository as repo
from portal_ingest.callers import KeyGrants
from portal_ingest.domain import Status
from portal_ingest.kafka_admin import PartnerKafkaProvisioner
from portal_ingest.settings import Settings
from portal_runtime.logs import get_logger
from portal_runtime.storage import ObjectStore

log = get_logger(__name__)

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
