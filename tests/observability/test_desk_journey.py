"""The article journey in the editors' desk, on the real stack with the six services and Jaeger:
a partner's article goes through the pipeline, its trace reaches Jaeger, and an editor opens
/desk/journey/{id}: the stages with their times, and the trace drawn as a waterfall with spans of
several services. Another agency's account is refused; with Jaeger unreachable the page still
shows the journey and says the trace cannot be shown.
"""

from __future__ import annotations

import html
import re
import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from portal_launcher.services import service_environment
from portal_moderation.app import create_app
from portal_moderation.settings import Settings
from tests.observability.conftest import ObservedPortal, unique
from tests.observability.test_traces_metrics_journey import (
    TRUSTED,
    _indexed,
    _jaeger_trace,
    _push,
)
from tests.support import OutsideClient

pytestmark = pytest.mark.stack

OTHER_AGENCY = "tp-ha-noi"  # deploy/seed/sources.yaml
TRACED = {"ingest", "normalize", "moderation", "publishing", "search"}
STAGES = ["received", "normalized", "auto_published", "published"]
UNAVAILABLE = "Không xem được dấu vết (trace)."


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "no CSRF token in the page"
    return match.group(1)


def _account(portal: ObservedPortal, role: str, source: str | None = None) -> tuple[str, str]:
    username = f"{role.replace('_', '-')}-{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(16)
    body: dict[str, Any] = {"password": password, "role": role, "display_name": username}
    if source:
        body["source"] = source
    portal.admin("PUT", "moderation", f"/admin/v1/users/{username}", body)
    return username, password


@contextmanager
def _signed_in(
    portal: ObservedPortal, role: str, source: str | None = None
) -> Iterator[httpx.Client]:
    """A browser-like client signed in to the running moderation service's desk."""
    username, password = _account(portal, role, source)
    with OutsideClient(base_url=portal.url("moderation"), timeout=30.0) as http:
        form = http.get("/desk/login")
        resp = http.post(
            "/desk/login",
            data={"username": username, "password": password, "csrf_token": _csrf(form.text)},
        )
        assert resp.status_code == 303, resp.text
        yield http


def _stages(page: str) -> list[str]:
    return re.findall(r'<tr class="stage" data-stage="([a-z_]+)"', page)


def _span_services(page: str, trace_id: str) -> set[str]:
    section = page.split(f'id="trace-{trace_id}"', 1)[1].split("</section>", 1)[0]
    return set(re.findall(r'<tr class="span[^"]*" data-service="([a-z-]+)"', section))


@pytest.fixture(scope="module")
def traced_article(observed: ObservedPortal) -> dict[str, str]:
    """A trusted agency's article, published and indexed, whose whole trace is in Jaeger."""
    key = observed.api_key(TRUSTED)
    ext = unique("nd-desk-journey")
    trace_id = uuid.uuid4().hex
    article_id = _push(
        observed, key, TRUSTED, ext, traceparent=f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"
    )["article_id"]
    observed.wait_for(lambda: _indexed(observed, ext, article_id), what="indexed by search")

    def journey_done() -> bool:
        body = observed.admin("GET", "ingest", f"/admin/v1/articles/{article_id}/journey")
        return [s["stage"] for s in body["stages"]] == STAGES

    observed.wait_for(journey_done, what="the journey to reach published")
    observed.wait_for(
        lambda: {s.service for s in _jaeger_trace(observed, trace_id)} >= TRACED,
        what="every service's spans in Jaeger",
    )
    return {"article_id": article_id, "trace_id": trace_id, "external_id": ext}


def test_an_editor_sees_the_stages_and_the_trace_as_a_waterfall(
    observed: ObservedPortal, traced_article: dict[str, str]
) -> None:
    article_id, trace_id = traced_article["article_id"], traced_article["trace_id"]
    with _signed_in(observed, "editor") as http:
        # The search box takes the id as typed (upper case, spaces) to the article's page.
        found = http.get("/desk/journey", params={"id": f" {article_id.upper()} "})
        assert found.status_code == 303
        assert found.headers["location"] == f"/desk/journey/{article_id}"
        bad = http.get("/desk/journey", params={"id": "không-phải-mã"})
        assert bad.status_code == 422 and "Mã bài viết" in bad.text

        resp = http.get(f"/desk/journey/{article_id}")
        assert resp.status_code == 200, resp.text
        page = resp.text
        assert "Hành trình bài viết" in page and "Tra cứu theo mã bài viết" in page
        assert _stages(page) == STAGES
        assert "Tiếp nhận từ cơ quan" in page and "Xuất bản lên cổng" in page
        # Each stage links to its trace, drawn on the same page.
        assert page.count(f'href="#trace-{trace_id}"') == len(STAGES)
        assert UNAVAILABLE not in page
        services = _span_services(page, trace_id)
        assert services >= TRACED, services
        # A span's key attributes open under it: the topic, the article, the HTTP route.
        text = html.unescape(page)
        assert "article.ingested" in text
        assert f"<dt>Mã bài viết</dt><dd>{article_id}</dd>" in text
        assert "/v1/articles/{external_id" in text
        # Bars are SVG rectangles (the desk's CSP allows no inline styles).
        assert 'style="' not in page and '<rect class="bar' in page

        # The item page links to the journey.
        item = http.get(f"/desk/items/{article_id}")
        assert item.status_code == 200
        assert f'href="/desk/journey/{article_id}"' in item.text


def test_another_agencys_account_cannot_open_the_journey(
    observed: ObservedPortal, traced_article: dict[str, str]
) -> None:
    article_id = traced_article["article_id"]
    with _signed_in(observed, "agency_publisher", OTHER_AGENCY) as http:
        resp = http.get(f"/desk/journey/{article_id}")
        assert resp.status_code == 404
        assert traced_article["external_id"] not in resp.text
        assert traced_article["trace_id"] not in resp.text
    with _signed_in(observed, "agency_publisher", TRUSTED) as http:
        own = http.get(f"/desk/journey/{article_id}")
        assert own.status_code == 200 and _stages(own.text) == STAGES
    with OutsideClient(base_url=observed.url("moderation")) as anonymous:
        resp = anonymous.get(f"/desk/journey/{article_id}")
        assert resp.status_code == 303 and "/desk/login" in resp.headers["location"]


async def test_with_jaeger_unreachable_the_journey_is_shown_with_a_notice(
    observed: ObservedPortal, traced_article: dict[str, str]
) -> None:
    article_id = traced_article["article_id"]
    env = service_environment(observed.settings, "moderation")
    values: dict[str, Any] = {k.lower(): v for k, v in env.items()}
    values["jaeger_query_url"] = "http://127.0.0.1:9"  # nothing listens there
    app = create_app(Settings(**values))
    username, password = _account(observed, "chief_editor")
    async with (
        LifespanManager(app, startup_timeout=120, shutdown_timeout=60),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://mod") as http,
    ):
        form = await http.get("/desk/login")
        signed = await http.post(
            "/desk/login",
            data={"username": username, "password": password, "csrf_token": _csrf(form.text)},
        )
        assert signed.status_code == 303
        resp = await http.get(f"/desk/journey/{article_id}")
    assert resp.status_code == 200, resp.text
    assert _stages(resp.text) == STAGES
    assert UNAVAILABLE in resp.text and "Không kết nối được máy chủ truy vết" in resp.text
    assert '<tr class="span' not in resp.text
