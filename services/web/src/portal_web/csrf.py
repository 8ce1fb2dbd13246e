"""CSRF protection of the website's forms, designed so public pages stay cacheable.

* Every form posts to a path under ``/gui/``. The secret is a random cookie with
  ``Path=/gui`` (HttpOnly, SameSite=Lax): browsers send it only to the forms' own pages and
  posts, so reading the portal never carries a cookie and its pages stay public for the edge.
* The token in a form is an HMAC of that cookie under the website's ``CSRF_SECRET``. A post is
  accepted only with the cookie and the matching token, and not from another site (``Origin``,
  ``Sec-Fetch-Site``).
* Public pages (an article with its comment form, a forum thread with its reply form) carry no
  token: the page script fetches one from ``GET /gui/phien`` (private) when the reader starts
  using a form. Without JavaScript the post arrives without a token; the form's own private
  page answers with everything typed kept and a token, and the reader presses "send" again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

FORMS_PREFIX = "/gui"
COOKIE = "gui"
FIELD = "csrf_token"
_LABEL = b"portal-web-csrf/v1"
_MAX = 200
COOKIE_MAX_AGE_S = 7 * 24 * 3600


def token_for(key: bytes, secret: str) -> str:
    digest = hmac.new(key, _LABEL + b"|" + secret.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


@dataclass(frozen=True)
class FormSession:
    """The reader's form secret (cookie) and the token its forms carry."""

    secret: str
    token: str
    new: bool


class CsrfFailure(Exception):
    """A post that cannot be trusted; ``forged`` when it came from another site or with a
    wrong token (a missing token is the ordinary case of a reader without JavaScript)."""

    def __init__(self, reason: str, *, forged: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.forged = forged


class Csrf:
    def __init__(self, key: str, *, public_base_url: str, cookie_secure: bool | None) -> None:
        self.key = (key or secrets.token_urlsafe(32)).encode()
        self.public_origin = _origin(public_base_url)
        self.cookie_secure = cookie_secure

    def session(self, request: Request) -> FormSession:
        secret = request.cookies.get(COOKIE)
        if secret and 20 <= len(secret) <= _MAX:
            return FormSession(secret, token_for(self.key, secret), new=False)
        secret = secrets.token_urlsafe(32)
        return FormSession(secret, token_for(self.key, secret), new=True)

    def remember(self, response: Response, request: Request, session: FormSession) -> None:
        if not session.new:
            return
        secure = (
            self.cookie_secure if self.cookie_secure is not None else request.url.scheme == "https"
        )
        response.set_cookie(
            COOKIE,
            session.secret,
            max_age=COOKIE_MAX_AGE_S,
            path=FORMS_PREFIX,
            secure=secure,
            httponly=True,
            samesite="lax",
        )

    def check(self, request: Request, presented: str | None) -> None:
        origin = request.headers.get("origin")
        if origin and origin != "null":
            own = {f"{request.url.scheme}://{request.headers.get('host', '')}", self.public_origin}
            if origin not in own:
                raise CsrfFailure(f"Origin {origin} is not this site", forged=True)
        if request.headers.get("sec-fetch-site") == "cross-site":
            raise CsrfFailure("Sec-Fetch-Site: cross-site", forged=True)
        secret = request.cookies.get(COOKIE)
        if not presented or not secret or len(secret) > _MAX:
            raise CsrfFailure("no form session yet", forged=False)
        if len(presented) > _MAX or not hmac.compare_digest(
            token_for(self.key, secret).encode(), presented.encode()
        ):
            raise CsrfFailure("csrf_token does not match", forged=True)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
