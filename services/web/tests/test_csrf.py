"""Forms' CSRF protection: a cookie for /gui only, and a token bound to it."""

from __future__ import annotations

import pytest
from starlette.requests import Request
from starlette.responses import Response

from portal_web.csrf import COOKIE, Csrf, CsrfFailure, token_for

CSRF = Csrf("secret", public_base_url="https://portal.vn", cookie_secure=None)


def request(headers: dict[str, str], scheme: str = "https") -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return Request(
        {
            "type": "http",
            "method": "POST",
            "scheme": scheme,
            "path": "/gui/hoi-dap",
            "headers": [(b"host", b"portal.vn"), *raw],
            "query_string": b"",
            "server": ("portal.vn", 443),
        }
    )


def test_a_new_reader_gets_a_cookie_for_the_forms_path_only() -> None:
    session = CSRF.session(request({}))
    assert session.new and session.token == token_for(b"secret", session.secret)
    response = Response()
    CSRF.remember(response, request({}), session)
    cookie = response.headers["set-cookie"].lower()
    assert f"{COOKIE}=" in cookie and "path=/gui" in cookie and "httponly" in cookie
    assert "samesite=lax" in cookie and "secure" in cookie
    again = CSRF.session(request({"Cookie": f"{COOKIE}={session.secret}"}))
    assert not again.new and again.token == session.token


def test_a_post_needs_the_cookie_and_its_token_from_this_site() -> None:
    secret = "s" * 43
    token = token_for(b"secret", secret)
    cookie = {"Cookie": f"{COOKIE}={secret}"}
    CSRF.check(request({**cookie, "Origin": "https://portal.vn"}), token)
    CSRF.check(request(cookie), token)  # no Origin (an old browser): the token decides
    with pytest.raises(CsrfFailure) as missing:
        CSRF.check(request(cookie), None)
    assert not missing.value.forged  # a reader without JavaScript: asked to press again
    with pytest.raises(CsrfFailure) as no_cookie:
        CSRF.check(request({}), token)
    assert not no_cookie.value.forged
    for headers, presented in (
        ({**cookie, "Origin": "https://evil.example"}, token),
        ({**cookie, "Sec-Fetch-Site": "cross-site"}, token),
        (cookie, token_for(b"other", secret)),
    ):
        with pytest.raises(CsrfFailure) as forged:
            CSRF.check(request(headers), presented)
        assert forged.value.forged
