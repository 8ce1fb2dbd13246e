"""Jinja2 templates of the web desk, and the security headers of its pages.

``templates/base.html`` is the layout of every page (``{% block nav %}``, and
``{% block nav_extra %}`` to add links without repeating the others); ``Templates.render`` fills
the common context (the editor, the CSRF token, the navigation the role may see). Each page
module names its own navigation link (``NAV``), which ``install_desk`` adds in page order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.responses import HTMLResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from portal_moderation.desk import present
from portal_moderation.desk.auth import CSRF_FIELD, DESK_PREFIX, DeskAuth, Visitor
from portal_moderation.desk.journey_view import gap_text
from portal_moderation.desk.waterfall import duration_text
from portal_moderation.domain import PAGE_ROLES, Action, DeskPage, Editor, Role, may, may_see
from portal_runtime.clock import utcnow

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"


@dataclass(frozen=True)
class NavLink:
    label: str
    href: str
    key: str
    roles: frozenset[Role]
    shortcut: str | None = None


def page_link(page: DeskPage, label: str, shortcut: str) -> NavLink:
    """The navigation link of one of the pages the domain names (roles from ``PAGE_ROLES``)."""
    return NavLink(label, f"{DESK_PREFIX}/{page.value}", page.value, PAGE_ROLES[page], shortcut)


class Templates:
    def __init__(self, auth: DeskAuth) -> None:
        self.auth = auth
        self.env = Environment(
            loader=FileSystemLoader(TEMPLATES_DIR),
            autoescape=select_autoescape(default=True, default_for_string=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(
            number=present.number,
            localtime=present.local_time,
            duration=present.duration,
            ago=present.ago,
            span_duration=duration_text,
            gap=gap_text,
        )
        self.env.globals.update(
            labels={
                "state": present.STATE_LABELS,
                "role": present.ROLE_LABELS,
                "policy": present.POLICY_LABELS,
                "kind": present.KIND_LABELS,
                "flag": present.FLAG_LABELS,
                "repair": present.REPAIR_LABELS,
                "action": present.ACTION_LABELS,
                "admin_action": present.ADMIN_ACTION_LABELS,
                "field": present.FIELD_LABELS,
                "age": present.AGE_LABELS,
                "error_type": present.ERROR_TYPE_LABELS,
            },
            label=present.label,
            percent=present.percent,
            csrf_field=CSRF_FIELD,
            prefix=DESK_PREFIX,
            Action=Action,
        )
        self.nav: list[NavLink] = []

    def add_nav(self, link: NavLink) -> None:
        self.nav.append(link)

    def nav_for(self, editor: Editor | None) -> list[NavLink]:
        if editor is None:
            return []
        return [link for link in self.nav if editor.role in link.roles]

    def context(self, request: Request, who: Visitor, active: str | None) -> dict[str, Any]:
        editor = who.editor
        return {
            "request": request,
            "editor": editor,
            "csrf_token": who.csrf_token,
            "nav": self.nav_for(editor),
            "active": active,
            "may": (lambda action: editor is not None and may(editor, action)),
            "may_see": (lambda page: editor is not None and may_see(editor, DeskPage(page))),
            "now": utcnow(),
            "static": f"{DESK_PREFIX}/static",
        }

    def render(
        self,
        request: Request,
        who: Visitor,
        name: str,
        *,
        status: int = 200,
        active: str | None = None,
        headers: dict[str, str] | None = None,
        **context: Any,
    ) -> HTMLResponse:
        html = self.env.get_template(name).render({**self.context(request, who, active), **context})
        response = HTMLResponse(html, status_code=status, headers=headers)
        who.remember(response, self.auth, request)
        return response


CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; "
    # Partner images are shown as the public will see them (images only, never scripts).
    "img-src 'self' data: https: http:; connect-src 'self'; font-src 'self'; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
)


class DeskHeaders:
    """Security headers on every desk response; nothing of the desk is cached but its assets."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not (path == DESK_PREFIX or path.startswith(DESK_PREFIX + "/")):
            await self.app(scope, receive, send)
            return
        static = path.startswith(f"{DESK_PREFIX}/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                extra = {
                    b"content-security-policy": CSP.encode(),
                    b"x-frame-options": b"DENY",
                    b"x-content-type-options": b"nosniff",
                    b"referrer-policy": b"same-origin",
                    b"cross-origin-opener-policy": b"same-origin",
                    b"cache-control": (b"public, max-age=3600" if static else b"no-store, private"),
                }
                if not static:
                    extra[b"vary"] = b"Cookie, HX-Request"
                for key, value in extra.items():
                    if key not in names:
                        headers.append((key, value))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)
