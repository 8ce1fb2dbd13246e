"""Use cases of the review desk: each runs in one transaction, with its event via the outbox."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portal_contracts.articles import (
    ArticleAction,
    ArticleIngestedEvent,
    ArticleNormalizedEvent,
    ArticleReviewedEvent,
    NormalizedArticle,
    ReviewDecision,
)
from portal_contracts.topics import ARTICLE_REVIEWED
from portal_moderation import accounts_repository as accounts_repo
from portal_moderation import audit_repository as audit_repo
from portal_moderation import pipeline_repository as pipeline_repo
from portal_moderation import repository as repo
from portal_moderation.db import outbox
from portal_moderation.domain import (
    DEFAULT_POLICY,
    PARTNER_REVIEWER,
    REVIEW_ACTIONS,
    Action,
    Claim,
    Conflict,
    DeskPage,
    Editor,
    Forbidden,
    InvalidEdit,
    ItemStatus,
    Policy,
    Role,
    SignInLimits,
    apply_edits,
    authorize,
    authorize_page,
    decide,
    on_normalized,
    reviewed_event,
    sign_in_throttled_until,
    token_digest,
    with_mapped_section,
)
from portal_moderation.passwords import Passwords
from portal_moderation.peers import IngestAdmin
from portal_runtime.batch import Message, by_key, newest_per_key
from portal_runtime.clock import utcnow
from portal_runtime.logs import get_logger
from portal_runtime.unit_of_work import UnitOfWork

log = get_logger(__name__)


class NotFound(Exception):
    pass


class SignInRefused(Exception):
    """Wrong credentials (401) or, with ``retry_at``, too many failures from the address (429)."""

    def __init__(self, reason: str, retry_at: datetime | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_at = retry_at


class ReviewDesk:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def receive(self, batch: list[Message[ArticleNormalizedEvent]], uow: UnitOfWork) -> None:
        """Normalised revisions enter the desk: queued, auto-published or retracted.

        The batch's items are locked in key order; an article's revisions are taken in offset
        order, each checked against the one before it (in the store or earlier in the batch).
        """
        now = utcnow()
        session = await uow.session()
        groups = by_key(batch, lambda e: e.data.article_id)
        items = await pipeline_repo.lock_items(session, list(groups))
        sources = await pipeline_repo.sources_of(session, {m.event.data.source for m in batch})
        saved: list[dict[str, Any]] = []
        history: list[dict[str, Any]] = []
        for article_id, messages in groups.items():
            current = items.get(article_id)
            for message in messages:
                data = message.event.data
                if data.action is ArticleAction.UPSERT and data.article is None:
                    uow.reject(message, "an upsert without its normalised article")
                    continue
                policy, categories = sources.get(data.source, (DEFAULT_POLICY, {}))
                outcome = on_normalized(repo.status_of(current), data.revision, data.action, policy)
                if outcome is None:
                    continue  # not newer than what the desk has
                article = data.article
                mapped: dict[str, dict[str, Any]] = {}
                if article is not None:
                    # The agency's category mapping gives a section the partner did not name.
                    article, mapped = with_mapped_section(article, categories)
                saved.append(
                    pipeline_repo.incoming_row(data, outcome, decided_at=now, article=article)
                )
                event_id = None
                if outcome.decision is not None and outcome.reviewer is not None:
                    partner = outcome.reviewer == PARTNER_REVIEWER
                    reviewed = _reviewed(
                        {
                            "article_id": data.article_id,
                            "source": data.source,
                            "external_id": data.external_id,
                            "revision": data.revision,
                        },
                        outcome.decision,
                        outcome.reviewer,
                        now,
                        "retracted by the source" if partner else None,
                        article,
                    )
                    uow.emit(ARTICLE_REVIEWED.name, reviewed, cause=message)
                    event_id = reviewed.event_id
                history.append(
                    {
                        "article_id": data.article_id,
                        "revision": data.revision,
                        "action": outcome.decision.value if outcome.decision else "received",
                        "actor": outcome.reviewer or f"source:{data.source}",
                        "actor_role": None,
                        "reason": None,
                        "decided_at": now,
                        "event_id": event_id,
                        "changes": _state_change(current, outcome.state.value) | mapped or None,
                        "wait_s": None,
                    }
                )
                current = {
                    **(current or {}),
                    "revision": data.revision,
                    "state": outcome.state.value,
                    "published_revision": outcome.published_revision,
                    "version": (current or {}).get("version", 0) + 1,
                }
        await pipeline_repo.save_incoming(session, saved)
        await pipeline_repo.add_histories(session, history)

    async def act(
        self,
        editor: Editor,
        article_id: str,
        action: Action,
        *,
        revision: int | None,
        reason: str | None = None,
        edits: dict[str, str | None] | None = None,
        version: int | None = None,
    ) -> dict[str, Any]:
        """An editor's decision (or edit); returns the item as it is afterwards.

        ``version`` is the desk's lock: the item as the editor's screen showed it.
        """
        authorize(editor, action)  # the role first: no item is looked up for a forbidden role
        async with self.sessions.begin() as session:
            row = await repo.lock_item(session, article_id)
            if row is None:
                raise NotFound(f"article_id: no review item {article_id}")
            authorize(editor, action, row["source"])
            status = repo.status_of(row)
            assert status is not None
            outcome = decide(status, action, revision, version)
            article = NormalizedArticle.model_validate(row["article"]) if row["article"] else None
            changes: dict[str, Any] | None = None
            if action is Action.EDIT:
                article, changes = _edited(article, edits or {}, status)
                if not changes:
                    return row  # nothing differs: no decision, no event
            now = utcnow()
            updated = await repo.save_decision(
                session,
                article_id,
                outcome,
                editor=editor,
                decided_at=now,
                article=article if action is Action.EDIT else None,
                reviewed=action in REVIEW_ACTIONS,
            )
            if action in REVIEW_ACTIONS:
                await repo.release_claim(session, article_id, editor.username)
            event_id = None
            if outcome.decision is not None:
                reviewed = _reviewed(row, outcome.decision, editor.username, now, reason, article)
                await outbox.add(session, ARTICLE_REVIEWED.name, reviewed)
                event_id = reviewed.event_id
            await repo.add_history(
                session,
                article_id=article_id,
                revision=row["revision"],
                action=_history_action(action),
                actor=editor.username,
                actor_role=editor.role.value,
                decided_at=now,
                reason=reason,
                changes=(changes or {}) | _state_change(row, outcome.state.value) or None,
                event_id=event_id,
                wait_s=_review_wait(action, row, now),
            )
        outbox.notify()
        log.info(
            "review_decision",
            article_id=article_id,
            revision=row["revision"],
            action=action.value,
            editor=editor.username,
        )
        return updated

    async def bulk_approve(
        self, editor: Editor, items: list[tuple[str, int | None]]
    ) -> list[BulkResult]:
        """Approve a selection, each item on its own (one refusal does not stop the others).

        Each item carries the version the editor saw, so nothing changed since is approved.
        """
        authorize(editor, Action.APPROVE)
        results: list[BulkResult] = []
        for article_id, version in items:
            try:
                row = await self.act(
                    editor, article_id, Action.APPROVE, revision=None, version=version
                )
                results.append(BulkResult(article_id, True, None, row))
            except (Conflict, Forbidden, NotFound, InvalidEdit) as exc:
                reason = exc.reason if isinstance(exc, Conflict) else str(exc)
                results.append(BulkResult(article_id, False, reason, None))
        return results

    async def claim(self, editor: Editor, article_id: str, ttl: timedelta) -> Claim:
        """Mark the item as open by ``editor`` unless a colleague has it open."""
        now = utcnow()
        async with self.sessions.begin() as session:
            return await repo.claim_item(session, article_id, editor.username, now, now + ttl)

    async def release(self, editor: Editor, article_id: str) -> None:
        async with self.sessions.begin() as session:
            await repo.release_claim(session, article_id, editor.username)

    async def keep_originals(
        self, batch: list[Message[ArticleIngestedEvent]], uow: UnitOfWork
    ) -> None:
        """The articles as the partners sent them, kept beside the repaired ones (newest wins)."""
        newest = newest_per_key(batch, lambda e: e.data.article_id, lambda e: e.data.revision)
        await pipeline_repo.save_originals(
            await uow.session(), [m.event.data for m in newest.values()]
        )


@dataclass(frozen=True)
class BulkResult:
    article_id: str
    ok: bool
    reason: str | None
    item: dict[str, Any] | None


def _state_change(row: dict[str, Any] | None, after: str) -> dict[str, Any]:
    """The audit trail's before/after of the state, when it changes."""
    before = row["state"] if row else None
    return {"state": {"before": before, "after": after}} if before != after else {}


def _history_action(action: Action) -> str:
    return {
        Action.APPROVE: "approved",
        Action.REJECT: "rejected",
        Action.EDIT: "edited",
        Action.RETRACT: "retracted",
    }[action]


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_at: datetime
    editor: Editor


class Accounts:
    """Editors' accounts and sign-in sessions."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        passwords: Passwords,
        *,
        session_ttl: timedelta,
        limits: SignInLimits,
    ) -> None:
        self.sessions = sessions
        self.passwords = passwords
        self.session_ttl = session_ttl
        self.limits = limits

    async def save_user(
        self,
        username: str,
        *,
        password: str | None,
        role: Role,
        display_name: str,
        source: str | None,
        active: bool,
        actor: str = "admin-api",
    ) -> tuple[dict[str, Any], bool]:
        """Create or update an account; a new password or deactivation ends its sessions.

        The change is in the admin audit log (never the password), in the same transaction.
        """
        new_hash = await self.passwords.hash(password) if password is not None else None
        async with self.sessions.begin() as session:
            existing = await accounts_repo.get_user(session, username, for_update=True)
            if existing is None and new_hash is None:
                raise ValueError("password: required to create an account")
            details: dict[str, Any] = {
                "role": role.value,
                "display_name": display_name,
                "source": source,
                "active": active,
                "password_changed": new_hash is not None,
            }
            if existing is not None:
                details["before"] = {
                    k: existing[k] for k in ("role", "display_name", "source", "active")
                }
            await audit_repo.add_admin_audit(
                session,
                actor=actor,
                action="user_created" if existing is None else "user_updated",
                target=f"user:{username}",
                details=details,
            )
            values: dict[str, Any] = {
                "role": role.value,
                "display_name": display_name,
                "source": source,
                "active": active,
            }
            if new_hash is not None:
                values.update(password_hash=new_hash)
            created = await accounts_repo.save_user(
                session, username, values, exists=existing is not None
            )
            if existing is not None and (new_hash is not None or not active):
                await accounts_repo.delete_sessions_of(session, username)
            user = await accounts_repo.get_user(session, username)
        assert user is not None
        return user, created

    async def sign_in(self, username: str, password: str, address: str) -> IssuedToken:
        """Check a password, unless ``address`` failed too often lately (no hash is spent then).

        Failures count per address and per (name, address), never per account: a stranger's
        attempts under an editor's name do not stop that editor signing in from elsewhere.
        """
        address = address[:64]  # a trusted proxy's X-Forwarded-For is the client's own text
        now = utcnow()
        limits = self.limits
        since = now - limits.window
        async with self.sessions() as session:
            retry_at = sign_in_throttled_until(
                limits,
                by_address=await accounts_repo.recent_sign_in_failures(
                    session, address, username=None, since=since, limit=limits.per_address
                ),
                by_name_and_address=await accounts_repo.recent_sign_in_failures(
                    session,
                    address,
                    username=username,
                    since=since,
                    limit=limits.per_name_and_address,
                ),
                now=now,
            )
            user = None if retry_at else await accounts_repo.get_user(session, username)
        if retry_at is not None:
            log.info("editor_sign_in_throttled", username=username, address=address)
            raise SignInRefused("too many failed sign-ins; try again later", retry_at=retry_at)
        usable = user is not None and user["active"]
        verified = await self.passwords.verify(
            user["password_hash"] if user is not None and usable else None, password
        )
        async with self.sessions.begin() as session:
            if user is None or not verified.ok:
                await accounts_repo.record_sign_in_failure(
                    session, address, username, utcnow(), keep_since=since
                )
            else:
                await accounts_repo.clear_sign_in_failures(session, address, username)
                if verified.new_hash:
                    await accounts_repo.set_password_hash(
                        session, username, verified.new_hash, replacing=user["password_hash"]
                    )
                token = secrets.token_urlsafe(32)
                expires_at = now + self.session_ttl
                await accounts_repo.create_session(
                    session, token_digest(token), username, expires_at
                )
        if user is None or not verified.ok:
            log.info("editor_sign_in_refused", username=username, address=address)
            raise SignInRefused("username or password wrong")
        editor = Editor(username=username, role=Role(user["role"]), source=user["source"])
        log.info("editor_signed_in", username=username, role=editor.role.value)
        return IssuedToken(token=token, expires_at=expires_at, editor=editor)

    async def editor_for(self, token: str) -> Editor | None:
        async with self.sessions() as session:
            return await accounts_repo.editor_for_token(session, token_digest(token), utcnow())

    async def sign_out(self, token: str) -> None:
        async with self.sessions.begin() as session:
            await accounts_repo.delete_session(session, token_digest(token))


class SourcesDesk:
    """The admins' sources screen: agencies, trust policy, category mapping (moderation's own
    data) and, through ingest's admin API, granted sections, API keys and Kafka access.

    Ingest owns keys and credentials: the desk only asks it (server-side, ADMIN_TOKEN) and
    shows a secret once, in the answer to the admin who asked. Every change is audited.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession], ingest: IngestAdmin) -> None:
        self.sessions = sessions
        self.ingest = ingest

    async def _audit(
        self, editor: Editor, action: str, target: str, details: dict[str, Any] | None = None
    ) -> None:
        async with self.sessions.begin() as session:
            await audit_repo.add_admin_audit(
                session, actor=editor.username, action=action, target=target, details=details
            )

    async def save_source(
        self,
        editor: Editor,
        code: str,
        *,
        name: str,
        kind: str,
        policy: Policy,
        sections: list[str],
        active: bool,
    ) -> bool:
        """Create or update an agency in ingest (sections, active) then in moderation (name,
        kind, policy); True if it is new to moderation."""
        authorize_page(editor, DeskPage.SOURCES)
        await self.ingest.put_source(code, name=name, kind=kind, sections=sections, active=active)
        async with self.sessions.begin() as session:
            before = await repo.get_source(session, code)
            await repo.upsert_source(session, code, name, kind, policy)
            await audit_repo.add_admin_audit(
                session,
                actor=editor.username,
                action="source_created" if before is None else "source_updated",
                target=f"source:{code}",
                details={
                    "name": name,
                    "kind": kind,
                    "policy": policy.value,
                    "sections": sections,
                    "active": active,
                    "before": (
                        {k: before[k] for k in ("name", "kind", "policy")} if before else None
                    ),
                },
            )
        log.info("source_saved", source=code, by=editor.username, policy=policy.value)
        return before is None

    async def set_categories(self, editor: Editor, code: str, mapping: dict[str, str]) -> None:
        authorize_page(editor, DeskPage.SOURCES)
        async with self.sessions.begin() as session:
            before = await repo.get_source(session, code)
            if before is None:
                raise NotFound(f"code: no source {code}")
            await repo.upsert_source(
                session,
                code,
                before["name"],
                before["kind"],
                Policy(before["policy"]),
                categories=mapping,
            )
            await audit_repo.add_admin_audit(
                session,
                actor=editor.username,
                action="categories_updated",
                target=f"source:{code}",
                details={"before": before["categories"], "after": mapping},
            )

    async def issue_key(self, editor: Editor, code: str, label: str | None) -> dict[str, Any]:
        authorize_page(editor, DeskPage.SOURCES)
        issued = await self.ingest.issue_key(code, label)
        await self._audit(
            editor,
            "api_key_issued",
            f"source:{code}",
            {"key_id": issued.get("key_id"), "label": label},
        )
        return issued

    async def revoke_key(self, editor: Editor, code: str, key_id: str) -> None:
        authorize_page(editor, DeskPage.SOURCES)
        await self.ingest.revoke_key(code, key_id)
        await self._audit(editor, "api_key_revoked", f"source:{code}", {"key_id": key_id})

    async def grant_kafka(self, editor: Editor, code: str) -> dict[str, Any]:
        authorize_page(editor, DeskPage.SOURCES)
        granted = await self.ingest.grant_kafka(code)
        await self._audit(
            editor, "kafka_granted", f"source:{code}", {"username": granted.get("username")}
        )
        return granted


def _edited(
    article: NormalizedArticle | None, edits: dict[str, str | None], status: ItemStatus
) -> tuple[NormalizedArticle, dict[str, Any]]:
    if article is None:
        raise Conflict(
            "article: this revision carries no article to edit",
            current_revision=status.revision,
            state=status.state,
        )
    return apply_edits(article, edits)


def _reviewed(
    item: dict[str, Any],
    decision: ReviewDecision,
    reviewer: str,
    now: datetime,
    reason: str | None,
    article: NormalizedArticle | None,
) -> ArticleReviewedEvent:
    """``article.reviewed`` of a decision on ``item``'s revision (its id, source, external id)."""
    return reviewed_event(
        article_id=item["article_id"],
        source=item["source"],
        external_id=item["external_id"],
        revision=item["revision"],
        decision=decision,
        reviewer=reviewer,
        reviewed_at=now,
        reason=reason,
        article=article,
    )


def _review_wait(action: Action, row: dict[str, Any], now: datetime) -> float | None:
    """How long the revision waited for this review (the dashboard's latency)."""
    if action not in (Action.APPROVE, Action.REJECT):
        return None
    waited: timedelta = now - row["received_at"]
    return max(0.0, waited.total_seconds())
