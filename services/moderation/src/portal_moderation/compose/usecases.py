"""The agency's desk use cases: save a draft, upload an image, submit, retract, list.

Each checks who asks against the rules (``compose.rules``) on every call, whatever the form
offered, then acts: drafts are moderation's own rows; images and submissions go to ingest's
desk channel as the agency (``peers.IngestAdmin``), so the article travels the pipeline every
partner's does. Every write is in the audit log with who did it.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portal_contracts.articles import article_id_for
from portal_moderation import audit_repository as audit_repo
from portal_moderation.compose import repository as drafts_repo
from portal_moderation.compose import rules, word_import
from portal_moderation.compose.rules import DraftFields, DraftState
from portal_moderation.domain import Editor, Forbidden
from portal_moderation.peers import IngestAdmin
from portal_moderation.usecases import NotFound
from portal_runtime.logs import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class Draft:
    draft_id: str
    source: str
    state: DraftState
    article_id: str
    external_id: str
    fields: DraftFields
    submitted_revision: int | None
    updated_by: str
    updated_at: datetime
    submitted_at: datetime | None = None
    editor_comment: str | None = None
    comment_by: str | None = None

    @property
    def unsent_changes(self) -> bool:
        """Saved since it was last submitted: the public (or the queue) has an older text."""
        return self.submitted_at is not None and self.updated_at > self.submitted_at


def _draft(row: dict[str, Any]) -> Draft:
    return Draft(
        draft_id=row["draft_id"],
        source=row["source"],
        state=DraftState(row["state"]),
        article_id=row["article_id"],
        external_id=row["external_id"],
        fields=DraftFields(
            title=row["title"],
            summary=row["summary"],
            section=row["section"],
            author=row["author"],
            body_html=row["body_html"],
            lead_image_url=row["lead_image_url"],
            lead_caption=row["lead_caption"],
        ),
        submitted_revision=row["submitted_revision"],
        updated_by=row["updated_by"],
        updated_at=row["updated_at"],
        submitted_at=row["submitted_at"],
        editor_comment=row["editor_comment"],
        comment_by=row["comment_by"],
    )


class Composer:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], ingest: IngestAdmin) -> None:
        self.sessions = sessions
        self.ingest = ingest

    async def sections_of(self, source: str) -> tuple[str, ...]:
        """The sections granted to ``source`` (ingest keeps them); unknown source: Forbidden."""
        found = await self.ingest.get_source(source)
        if found is None or not found.get("active", False):
            raise Forbidden(f"source: '{source}' is not an active agency")
        return tuple(found.get("sections") or ())

    async def _own(self, session: AsyncSession, editor: Editor, draft_id: str) -> Draft:
        row = await drafts_repo.get_draft(session, draft_id)
        if row is None:
            raise NotFound(f"draft {draft_id} not found")
        draft = _draft(row)
        rules.check_draft_access(editor, draft.source)
        return draft

    async def get(self, editor: Editor, draft_id: str) -> Draft:
        async with self.sessions() as session:
            return await self._own(session, editor, draft_id)

    async def review_of(self, editor: Editor, draft: Draft) -> dict[str, Any] | None:
        rules.check_draft_access(editor, draft.source)
        async with self.sessions() as session:
            return await drafts_repo.review_of(session, draft.article_id)

    async def list_for(self, editor: Editor, source: str | None) -> list[dict[str, Any]]:
        """The agency's drafts and submitted articles (an agency account: only its own)."""
        if source is not None or editor.source is not None:
            source = rules.writing_source(editor, source)
        async with self.sessions() as session:
            return await drafts_repo.list_drafts(session, source=source)

    async def upload_image(self, editor: Editor, source: str | None, data: bytes) -> dict[str, Any]:
        """Check and store an image for the agency's articles (ingest checks its content)."""
        source = rules.writing_source(editor, source)
        await self.sections_of(source)
        stored = await self.ingest.desk_image(source, data)
        await self._audit(
            editor,
            "desk_image_uploaded",
            f"source:{source}",
            {"url": stored["url"], "bytes": stored["bytes"]},
        )
        return stored

    async def save(
        self,
        editor: Editor,
        draft_id: str | None,
        fields: DraftFields,
        *,
        source: str | None = None,
    ) -> Draft:
        """Create (``draft_id`` None, for ``source``) or update a draft; nothing is sent yet."""
        fields = rules.clean_fields(fields)
        current = None if draft_id is None else await self.get(editor, draft_id)
        target = current.source if current else rules.writing_source(editor, source)
        rules.check_section(fields.section, await self.sections_of(target), target)
        values = {k: v for k, v in asdict(fields).items()}
        async with self.sessions.begin() as session:
            if current is None:
                draft_id = rules.new_draft_id()
                external_id = rules.external_id_for(draft_id)
                await drafts_repo.insert_draft(
                    session,
                    {
                        **values,
                        "draft_id": draft_id,
                        "source": target,
                        "external_id": external_id,
                        "article_id": article_id_for(target, external_id),
                        "state": DraftState.DRAFT.value,
                        "created_by": editor.username,
                        "updated_by": editor.username,
                    },
                )
            else:
                assert draft_id is not None
                await drafts_repo.update_draft(
                    session, draft_id, {**values, "updated_by": editor.username}
                )
            await audit_repo.add_admin_audit(
                session,
                actor=editor.username,
                action="draft_saved",
                target=f"draft:{draft_id}",
                details={"source": target, "title": fields.title, "section": fields.section},
            )
            row = await drafts_repo.get_draft(session, draft_id)
        assert row is not None
        return _draft(row)

    async def submit(self, editor: Editor, draft_id: str) -> Draft:
        """Send the draft to ingest as the agency: a new revision of its article."""
        draft = await self.get(editor, draft_id)
        if not rules.may_submit(draft.state):
            raise Forbidden("state: a retracted article cannot be submitted again")
        rules.check_section(
            draft.fields.section, await self.sections_of(draft.source), draft.source
        )
        content = rules.article_content(draft.fields)
        receipt = await self.ingest.desk_submit(
            draft.source,
            draft.external_id,
            content.model_dump(mode="json", exclude_none=True),
            editor.username,
        )
        async with self.sessions.begin() as session:
            await drafts_repo.mark_submitted(
                session,
                draft_id,
                state=DraftState.SUBMITTED.value,
                revision=int(receipt["revision"]),
            )
            await audit_repo.add_admin_audit(
                session,
                actor=editor.username,
                action="draft_submitted",
                target=f"article:{draft.article_id}",
                details={
                    "source": draft.source,
                    "draft": draft_id,
                    "revision": receipt["revision"],
                    "duplicate": receipt.get("duplicate", False),
                    "title": draft.fields.title,
                },
            )
        log.info(
            "desk_article_submitted",
            source=draft.source,
            article_id=draft.article_id,
            revision=receipt["revision"],
            by=editor.username,
        )
        return await self.get(editor, draft_id)

    async def send_back(self, editor: Editor, draft_id: str, comment: str) -> Draft:
        """An editor sends a rejected article back to its agency with a comment."""
        draft = await self.get(editor, draft_id)
        review = await self.review_of(editor, draft)
        comment = rules.check_send_back(
            editor, draft.source, review["state"] if review else None, comment
        )
        async with self.sessions.begin() as session:
            await drafts_repo.set_comment(session, draft_id, comment, editor.username)
            await audit_repo.add_admin_audit(
                session,
                actor=editor.username,
                action="draft_sent_back",
                target=f"article:{draft.article_id}",
                details={"source": draft.source, "draft": draft_id, "comment": comment},
            )
        return await self.get(editor, draft_id)

    async def retract(self, editor: Editor, draft_id: str) -> Draft:
        draft = await self.get(editor, draft_id)
        if not rules.may_retract(draft.state):
            raise Forbidden("state: only a submitted article can be retracted")
        receipt = await self.ingest.desk_retract(draft.source, draft.external_id, editor.username)
        async with self.sessions.begin() as session:
            await drafts_repo.mark_submitted(
                session,
                draft_id,
                state=DraftState.RETRACTED.value,
                revision=int(receipt["revision"]),
            )
            await audit_repo.add_admin_audit(
                session,
                actor=editor.username,
                action="draft_retracted",
                target=f"article:{draft.article_id}",
                details={
                    "source": draft.source,
                    "draft": draft_id,
                    "revision": receipt["revision"],
                },
            )
        return await self.get(editor, draft_id)

    async def import_docx(
        self, editor: Editor, source: str | None, data: bytes
    ) -> tuple[Draft, tuple[str, ...]]:
        """A draft from a Word document: its images stored like uploads (through ingest), the
        body citing them; the import's warnings for the writer to check."""
        source = rules.writing_source(editor, source)
        await self.sections_of(source)
        document = await asyncio.to_thread(word_import.import_docx, data)
        body = document.body_html
        for image in document.images:
            stored = await self.ingest.desk_image(source, image.data)
            body = body.replace(f'"cid:{image.name}"', f'"{stored["url"]}"')
        draft = await self.save(
            editor, None, DraftFields(title=document.title, body_html=body), source=source
        )
        await self._audit(
            editor,
            "docx_imported",
            f"draft:{draft.draft_id}",
            {
                "source": source,
                "images": len(document.images),
                "warnings": list(document.warnings),
                "bytes": len(data),
            },
        )
        return draft, document.warnings

    async def _audit(
        self, editor: Editor, action: str, target: str, details: dict[str, Any]
    ) -> None:
        async with self.sessions.begin() as session:
            await audit_repo.add_admin_audit(
                session, actor=editor.username, action=action, target=target, details=details
            )
