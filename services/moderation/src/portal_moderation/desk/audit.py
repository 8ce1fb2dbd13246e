"""The audit log (chief editors and admins): editors' decisions on items, and the admin
changes (sources, accounts, keys), filtered and paged from the newest."""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations.
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.responses import Response

from portal_moderation import accounts_repository as accounts_repo
from portal_moderation import audit_repository as audit_repo
from portal_moderation.desk import forms, present
from portal_moderation.desk.auth import DESK_PREFIX
from portal_moderation.desk.deps import Deps, Signed, on_page
from portal_moderation.desk.errors import DeskError
from portal_moderation.desk.templating import NavLink, page_link
from portal_moderation.domain import DeskPage

router = APIRouter(prefix=DESK_PREFIX, include_in_schema=False)
NAV: NavLink | None = page_link(DeskPage.AUDIT, "Nhật ký", "g l")

PAGE_SIZE = 50
FILTER_FIELDS = ("actor", "item", "action", "source", "since", "until")


def parse_filter(params: Any) -> audit_repo.AuditFilter:
    actor = forms.text((params.get("actor") or "").strip() or None, "Người thực hiện", 64)
    item = forms.text((params.get("item") or "").strip() or None, "Tin, bài", 200)
    action = params.get("action") or None
    if action is not None and action not in present.ACTION_LABELS:
        raise DeskError(422, "Thao tác không hợp lệ.", "action: unknown")
    until = forms.day(params.get("until"), "Đến ngày")
    return audit_repo.AuditFilter(
        actor=actor,
        item=item,
        action=action,
        source=forms.code(params.get("source"), "nguồn"),
        since=forms.day(params.get("since"), "Từ ngày"),
        until=until + timedelta(days=1) if until is not None else None,  # the whole last day
    )


@router.get("/audit")
async def audit(request: Request, who: Signed, deps: Deps) -> Response:
    on_page(who, DeskPage.AUDIT)
    params = request.query_params
    tab = params.get("tab") or "decisions"
    if tab not in ("decisions", "admin"):
        raise DeskError(422, "Mục nhật ký không hợp lệ.", "tab: decisions or admin")
    before = forms.number(params.get("before"), "before")
    found = parse_filter(params)
    async with deps.desk.sessions() as session:
        if tab == "decisions":
            entries = await audit_repo.search_decisions(
                session, found, before_id=before, limit=PAGE_SIZE
            )
        else:
            entries = await audit_repo.search_admin_audit(
                session, actor=found.actor, target=found.item, before_id=before, limit=PAGE_SIZE
            )
        people = [u["username"] for u in await accounts_repo.list_users(session)]
    older = entries[-1]["id"] if len(entries) == PAGE_SIZE else None
    query = {k: v for k, v in params.items() if k != "before" and v}
    return deps.templates.render(
        request,
        who,
        "audit.html",
        active="audit",
        tab=tab,
        entries=entries,
        older=urlencode({**query, "before": older}) if older else None,
        filters={
            **{name: params.get(name) or "" for name in FILTER_FIELDS},
            "actor": found.actor or "",
            "item": found.item or "",
        },
        people=people,
        sources=await deps.source_names(),
    )
