"""Security headers on publishing's responses: ``nosniff`` on every one, and on HTML (the
article page behind feed and sitemap links) a Content-Security-Policy that lets the page load
nothing but the portal's own images and styles: no script runs, whatever an article holds.

The layer sits in front of the stored pages, so a cache hit carries the headers too; a header
a route set itself (the media's stricter policy) is kept.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HTML_CSP = (
    "default-src 'none'; img-src 'self' data:; style-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower(): v for k, v in headers}
                if b"x-content-type-options" not in present:
                    headers.append((b"x-content-type-options", b"nosniff"))
                html = present.get(b"content-type", b"").startswith(b"text/html")
                if html and b"content-security-policy" not in present:
                    headers.append((b"content-security-policy", HTML_CSP.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)
