"""What every page handler shares: the APIs, templates, cache policies, and the error pages.

Handlers are thin: read the request, call the APIs (in parallel where a page needs several),
build the view model (``views``) and render. An API that does not answer gives a 503 page
(publishing is the page's content) or an empty block with a note (a side block such as related
items); a 404 or 410 from an API is the page's own 404 or 410.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from portal_web.apis import ApiError, Apis, NotFound, RateLimited, Unavailable
from portal_web.caching import CachePolicy, page_response
from portal_web.csrf import Csrf
from portal_web.settings import Settings
from portal_web.templating import Templates
from portal_web.views import Site

ERROR_RETRY_AFTER_S = 30


class PageError(Exception):
    """A page that cannot be shown: rendered as ``error.html`` with this status."""

    def __init__(
        self, status: int, title: str, message: str, retry_after_s: int | None = None
    ) -> None:
        super().__init__(f"{status} {title}")
        self.status = status
        self.title = title
        self.message = message
        self.retry_after_s = retry_after_s


NOT_FOUND = PageError(
    404,
    "Không tìm thấy trang",
    "Trang bạn tìm không có hoặc đã được chuyển đi. Hãy thử tìm kiếm, hoặc về trang chủ.",
)


def unavailable() -> PageError:
    return PageError(
        503,
        "Tạm thời chưa hiển thị được",
        "Hệ thống đang bận hoặc đang bảo trì. Vui lòng tải lại trang sau ít phút.",
        retry_after_s=ERROR_RETRY_AFTER_S,
    )


def slow_down(retry_after_s: int) -> PageError:
    return PageError(
        429,
        "Xin vui lòng chờ giây lát",
        "Có quá nhiều yêu cầu từ địa chỉ của bạn. Vui lòng tải lại trang sau ít giây.",
        retry_after_s=retry_after_s,
    )


def page_error_for(exc: ApiError) -> PageError:
    """The page for an API answer a handler did not turn into one itself: the reader sees a
    page that says what happened (never a 500), and a rate limit keeps its Retry-After."""
    if isinstance(exc, NotFound):
        return NOT_FOUND
    if isinstance(exc, RateLimited):
        return slow_down(exc.retry_after_s)
    return unavailable()


@dataclass
class Web:
    settings: Settings
    apis: Apis
    templates: Templates
    csrf: Csrf

    def __post_init__(self) -> None:
        s = self.settings
        self.content = CachePolicy(
            s.cache_max_age_s,
            s.cache_s_maxage_s,
            s.cache_stale_while_revalidate_s,
            s.cache_stale_if_error_s,
        )
        self.live = CachePolicy(
            s.cache_live_s,
            s.cache_live_s,
            s.cache_stale_while_revalidate_s,
            s.cache_stale_if_error_s,
        )

    @staticmethod
    def client_ip(request: Request) -> str | None:
        # The peer, or the address a trusted proxy (TRUSTED_PROXIES, the edge) names.
        return request.client.host if request.client else None

    async def site(self, request: Request) -> Site:
        ip = self.client_ip(request)

        async def parsed() -> Site:
            return Site.of(await self.apis.site(ip))

        try:
            site: Site = await self.apis.memo.get("site:parsed", parsed)
        except (Unavailable, NotFound) as exc:
            raise unavailable() from exc
        return site

    async def site_or_none(self, request: Request) -> Site | None:
        try:
            return await self.site(request)
        except PageError:
            return None

    def page(
        self,
        request: Request,
        template: str,
        *,
        site: Site | None,
        policy: CachePolicy | None,
        keys: Iterable[str] = (),
        status: int = 200,
        active: str | None = None,
        headers: dict[str, str] | None = None,
        **context: Any,
    ) -> Response:
        html = self.templates.render(
            template, site=site, active=active, request_path=request.url.path, **context
        )
        return page_response(
            request, html, policy=policy, keys=keys, status=status, headers=headers
        )

    async def error(self, request: Request, error: PageError) -> Response:
        site = await self.site_or_none(request)
        headers = {"Retry-After": str(error.retry_after_s)} if error.retry_after_s else None
        # A 404 may be cached briefly (an article not yet published appears soon); a 429 or 503
        # never.
        policy = self.live if error.status == 404 else None
        return self.page(
            request,
            "error.html",
            site=site,
            policy=policy,
            keys=["site"],
            status=error.status,
            headers=headers,
            error=error,
        )
