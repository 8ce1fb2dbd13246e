"""Sign-in for the web desk: cookie sessions and CSRF tokens (reusable by every desk page).

* The session cookie holds the same random token as the API's bearer sessions (only its
  SHA-256 is stored), HttpOnly, SameSite=Lax, Secure when the request came over HTTPS.
* CSRF: every state-changing request must carry a token (form field ``csrf_token`` or header
  ``X-CSRF-Token``, which htmx sends) equal to an HMAC of the session token; before sign-in the
  secret is a random pre-session cookie, so the sign-in form is protected too. A request whose
  Origin is another site is refused as well.

Pages take who is asking through the dependencies of ``deps`` (``Anyone``, ``Signed``,
``AnyonePost``, ``SignedPost``), which call ``DeskAuth.visitor_of`` and ``DeskAuth.check_csrf``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import Request
from starlette.responses import Response

from portal_moderation.domain import Editor
from portal_moderation.usecases import Accounts

SESSION_COOKIE = "desk_session"
PRE_SESSION_COOKIE = "desk_pre"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
DESK_PREFIX = "/desk"
_CSRF_LABEL = b"portal-desk-csrf/v1"
_MAX_TOKEN = 200


def csrf_for(secret: str) -> str:
    """The CSRF token of a session: unguessable without the (HttpOnly) session secret."""
    digest = hmac.new(secret.encode(), _CSRF_LABEL, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def csrf_matches(secret: str | None, presented: str | None) -> bool:
    if not secret or not presented or len(presented) > _MAX_TOKEN:
        return False
    return hmac.compare_digest(csrf_for(secret).encode(), presented.encode())


def safe_next(target: str | None) -> str:
    """Where to go after sign-in: only a path of the desk (no open redirect)."""
    if (
        target
        and target.startswith(DESK_PREFIX + "/")
        and not target.startswith("//")
        and "\\" not in target
        and "\n" not in target
        and "\r" not in target
    ):
        return target
    return f"{DESK_PREFIX}/queue"


class NotSignedIn(Exception):
    """No (valid) session: pages redirect to the sign-in form."""


class CsrfRefused(Exception):
    """A state-changing request without the right CSRF token (HTTP 403)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Visitor:
    """Who is asking: the signed-in editor (or nobody) and this session's CSRF token."""

    editor: Editor | None
    secret: str
    csrf_token: str
    session_token: str | None = None
    new_pre_session: bool = False

    def remember(self, response: Response, auth: DeskAuth, request: Request) -> None:
        """Set the pre-session cookie a page has just created (before sign-in)."""
        if self.new_pre_session and self.editor is None:
            auth.set_cookie(response, request, PRE_SESSION_COOKIE, self.secret, max_age=None)


class DeskAuth:
    def __init__(self, accounts: Accounts, *, cookie_secure: bool | None, max_age_s: int) -> None:
        self.accounts = accounts
        self.cookie_secure = cookie_secure
        self.max_age_s = max_age_s

    def secure(self, request: Request) -> bool:
        if self.cookie_secure is not None:
            return self.cookie_secure
        return request.url.scheme == "https"

    def set_cookie(
        self, response: Response, request: Request, name: str, value: str, max_age: int | None
    ) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path="/",
            secure=self.secure(request),
            httponly=True,
            samesite="lax",
        )

    def start_session(self, response: Response, request: Request, token: str) -> None:
        self.set_cookie(response, request, SESSION_COOKIE, token, max_age=self.max_age_s)
        response.delete_cookie(PRE_SESSION_COOKIE, path="/")

    def end_session(self, response: Response) -> None:
        response.delete_cookie(SESSION_COOKIE, path="/")

    async def visitor_of(self, request: Request) -> Visitor:
        cached: Visitor | None = getattr(request.state, "desk_visitor", None)
        if cached is not None:
            return cached
        token = request.cookies.get(SESSION_COOKIE)
        editor = None
        if token and len(token) <= _MAX_TOKEN:
            editor = await self.accounts.editor_for(token)
        if editor is not None and token is not None:
            who = Visitor(editor, token, csrf_for(token), session_token=token)
        else:
            pre = request.cookies.get(PRE_SESSION_COOKIE)
            fresh = not pre or len(pre) > _MAX_TOKEN
            secret = secrets.token_urlsafe(32) if fresh or pre is None else pre
            who = Visitor(None, secret, csrf_for(secret), new_pre_session=fresh)
        request.state.desk_visitor = who
        return who

    async def check_csrf(self, request: Request, who: Visitor) -> None:
        origin = request.headers.get("origin")
        if origin is not None and origin != "null":
            expected = f"{request.url.scheme}://{request.headers.get('host', '')}"
            if origin != expected:
                raise CsrfRefused(f"Origin: {origin} is not this site")
        if request.headers.get("sec-fetch-site") == "cross-site":
            raise CsrfRefused("Sec-Fetch-Site: a request from another site")
        presented = request.headers.get(CSRF_HEADER)
        if presented is None:
            content_type = request.headers.get("content-type", "")
            if content_type.startswith(
                ("application/x-www-form-urlencoded", "multipart/form-data")
            ):
                form = await request.form()
                value = form.get(CSRF_FIELD)
                presented = value if isinstance(value, str) else None
        if who.new_pre_session or not csrf_matches(who.secret, presented):
            raise CsrfRefused("csrf_token: missing or wrong")


def login_redirect_target(request: Request) -> str:
    path = request.url.path
    if request.url.query:
        path = f"{path}?{request.url.query}"
    return f"{DESK_PREFIX}/login?next={quote(path, safe='')}"


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def form_value(form: Any, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) else None
