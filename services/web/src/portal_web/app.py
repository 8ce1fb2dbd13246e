"""Wires the website: settings, the three API clients, templates, pages, headers."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.responses import Response

from portal_runtime.bodylimit import BodyLimit
from portal_runtime.logs import get_logger
from portal_runtime.serve import serve
from portal_runtime.service import HttpService
from portal_web import engaging, reading, submitting
from portal_web.apis import ApiError, Apis
from portal_web.assets import Assets
from portal_web.csrf import Csrf
from portal_web.pages import NOT_FOUND, PageError, Web, page_error_for
from portal_web.security import SecurityHeaders
from portal_web.settings import Settings
from portal_web.templating import Templates

log = get_logger(__name__)

# FastAPI's own pages: an HTML website has no OpenAPI document to offer its readers.
_API_DOCS = {"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}


class Website(HttpService):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.apis = Apis(
            publishing_url=settings.publishing_url,
            search_url=settings.search_url,
            engagement_url=settings.engagement_url,
            timeout_s=settings.api_timeout_s,
            cache_s=settings.api_cache_s,
        )
        # Ready when the APIs it reads answer (their /healthz; each has its own /readyz).
        self.checks.update(
            {
                "publishing": self.apis.publishing.ping,
                "search": self.apis.search.ping,
                "engagement": self.apis.engagement.ping,
            }
        )

    async def stop(self) -> None:
        await self.apis.close()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    service = Website(settings)
    # Every page makes a few API calls: their spans and the access log say enough.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    web = Web(
        settings=settings,
        apis=service.apis,
        templates=Templates(
            Assets(), site_name=settings.site_name, base_url=settings.public_base_url
        ),
        csrf=Csrf(
            settings.csrf_secret.get_secret_value(),
            public_base_url=settings.public_base_url,
            cookie_secure=settings.cookie_secure,
        ),
    )
    app = service.create_app(
        title="Cổng TTĐT — Website",
        description="The public portal website (HTML).",
        routers=[reading.router, engaging.router, submitting.router],
    )
    app.router.routes = [r for r in app.router.routes if getattr(r, "path", "") not in _API_DOCS]

    async def page_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PageError)
        return await web.error(request, exc)

    async def not_found(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith(("/static/", "/media/")):
            return Response("Not found\n", status_code=404, media_type="text/plain")
        return await web.error(request, NOT_FOUND)

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        log.warning("api_answer_not_handled", api=exc.api, status=exc.status, path=request.url.path)
        return await web.error(request, page_error_for(exc))

    app.add_exception_handler(PageError, page_error)
    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(404, not_found)
    # A malformed address (a path or query the pages do not take) is a page that does not exist.
    app.add_exception_handler(RequestValidationError, not_found)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(SecurityHeaders)
    app.state.web = web  # what every route gets (deps.py)
    return app


def main() -> None:
    settings = Settings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
