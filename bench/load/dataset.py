"""The data set of the load benchmark: N stable Vietnamese articles over 12 sections from 7
sources, published through publishing's own consumer (article.reviewed events on Kafka) and
indexed by search, and the searches readers ask."""

from __future__ import annotations

import asyncio
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaProducer
from opensearchpy import AsyncOpenSearch

from portal_contracts.articles import (
    ArticleReviewed,
    ArticleReviewedEvent,
    NormalizedArticle,
    ReviewDecision,
    article_id_for,
)
from portal_contracts.codec import encode
from portal_contracts.topics import ARTICLE_REVIEWED
from portal_launcher.components.kafka import admin_client_options
from portal_launcher.settings import StackSettings

SEARCH_ALIAS = "articles"  # portal_search's default index alias

# Where the articles go: (source, section). Portal sections with their usual agencies, and the
# standard sections of a few partner sub-sites; several sections, several sources.
PLACEMENTS = [
    ("bao-nhan-dan", "tin-hoat-dong"),
    ("bao-nhan-dan", "xay-dung-dang"),
    ("ban-tuyen-giao-dan-van-trung-uong", "van-de-quan-tam"),
    ("ban-to-chuc-trung-uong", "xay-dung-dang"),
    ("van-phong-trung-uong", "van-ban-moi"),
    ("van-phong-trung-uong", "huong-dan-cong-tac-dang"),
    ("bao-nhan-dan", "tong-bi-thu"),
    ("bao-nhan-dan", "thu-tuong"),
    ("tp-ha-noi", "ct-tin-tuc-hoat-dong"),
    ("tp-ha-noi", "ct-xay-dung-dang"),
    ("tp-ho-chi-minh", "ct-tin-tuc-hoat-dong"),
    ("bo-y-te", "ct-van-ban-tai-lieu"),
]
EVENTS = [
    "Hội nghị",
    "Hội thảo khoa học",
    "Tọa đàm",
    "Phiên họp",
    "Đoàn công tác",
    "Lễ kỷ niệm",
    "Buổi làm việc",
    "Hội nghị trực tuyến",
]
TOPICS = [
    "công tác xây dựng, chỉnh đốn Đảng",
    "chuyển đổi số quốc gia",
    "phát triển kinh tế - xã hội",
    "cải cách hành chính",
    "phòng, chống tham nhũng, tiêu cực",
    "giáo dục và đào tạo",
    "y tế cơ sở",
    "xây dựng nông thôn mới",
    "quốc phòng, an ninh",
    "công tác đối ngoại",
    "bảo tồn văn hóa dân tộc",
    "khoa học, công nghệ và đổi mới sáng tạo",
]
PLACES = [
    "Hà Nội",
    "Thành phố Hồ Chí Minh",
    "Hải Phòng",
    "Đà Nẵng",
    "Cần Thơ",
    "Huế",
    "Nghệ An",
    "Thanh Hóa",
    "Quảng Ninh",
    "Lâm Đồng",
    "Đắk Lắk",
    "An Giang",
]
PARAGRAPHS = [
    "Đảng Cộng sản Việt Nam lãnh đạo Nhà nước và xã hội, tiếp tục đẩy mạnh công tác xây dựng, "
    "chỉnh đốn Đảng và hệ thống chính trị trong sạch, vững mạnh toàn diện.",
    "Hội nghị nhấn mạnh yêu cầu phát huy sức mạnh đại đoàn kết toàn dân tộc, thực hiện thắng lợi "
    "các mục tiêu phát triển kinh tế - xã hội của nhiệm kỳ.",
    "Các cấp ủy, tổ chức đảng cần nâng cao năng lực lãnh đạo, sức chiến đấu; gắn việc học tập và "
    "làm theo tư tưởng, đạo đức, phong cách Hồ Chí Minh với nhiệm vụ chính trị của địa phương.",
    "Chuyển đổi số được xác định là nhiệm vụ trọng tâm, góp phần hiện đại hóa nền hành chính, "
    "phục vụ người dân và doanh nghiệp ngày càng tốt hơn.",
    "Công tác phòng, chống tham nhũng, lãng phí, tiêu cực được triển khai quyết liệt, đồng bộ, "
    "không có vùng cấm, không có ngoại lệ.",
    "Đại biểu đã thảo luận sôi nổi, đóng góp nhiều ý kiến tâm huyết, trách nhiệm vào dự thảo văn "
    "kiện trình đại hội đảng bộ các cấp.",
    "Phát biểu chỉ đạo, đồng chí yêu cầu các địa phương tập trung tháo gỡ khó khăn, vướng mắc, "
    "thúc đẩy tăng trưởng, bảo đảm an sinh xã hội.",
    "Chương trình mục tiêu quốc gia xây dựng nông thôn mới đạt nhiều kết quả quan trọng, đời sống "
    "vật chất và tinh thần của nhân dân không ngừng được nâng lên.",
    "Ngành y tế tiếp tục củng cố mạng lưới y tế cơ sở, nâng cao chất lượng khám, chữa bệnh và "
    "chăm sóc sức khỏe nhân dân.",
    "Giáo dục và đào tạo là quốc sách hàng đầu; đổi mới căn bản, toàn diện giáo dục gắn với phát "
    "triển nguồn nhân lực chất lượng cao.",
    "Nhiệm vụ bảo vệ vững chắc độc lập, chủ quyền, thống nhất, toàn vẹn lãnh thổ được quán triệt "
    "trong toàn Đảng, toàn dân và toàn quân.",
    "Hoạt động đối ngoại được triển khai chủ động, tích cực, góp phần nâng cao vị thế, uy tín của "
    "đất nước trên trường quốc tế.",
]
SEARCHES: list[dict[str, Any]] = [
    {"q": "chuyển đổi số"},
    {"q": "chuyen doi so"},  # without diacritics
    {"q": "phòng, chống tham nhũng"},
    {"q": "xây dựng nông thôn mới"},
    {"q": "Hà Nội"},
    {"q": "hội nghị trực tuyến", "sort": "date"},
    {"q": "giáo dục", "section": "tin-hoat-dong"},
    {"q": "quoc phong an ninh"},
    {"q": "y tế cơ sở", "size": 20},
    {"q": "đối ngoại", "page": 2},
    {"q": "cải cách hành chính", "source": "bao-nhan-dan"},
    {"q": ""},  # the newest articles
]


def article_for(i: int) -> tuple[str, str, NormalizedArticle]:
    """Article number i of the data set: always the same (stable ids, stable content)."""
    rnd = random.Random(i)
    source, section = PLACEMENTS[i % len(PLACEMENTS)]
    title = (
        f"{rnd.choice(EVENTS)} về {rnd.choice(TOPICS)} tại {rnd.choice(PLACES)} (bài số {i + 1})"
    )
    paragraphs = [rnd.choice(PARAGRAPHS) for _ in range(rnd.randint(10, 18))]
    body_html = "".join(f"<p>{p}</p>" for p in paragraphs)
    external_id = f"load-{i}"
    return (
        source,
        external_id,
        NormalizedArticle(
            title=title,
            summary=paragraphs[0],
            body_html=body_html,
            body_text="\n\n".join(paragraphs),
            author=rnd.choice(["Phóng viên", "Nhóm phóng viên", "Ban biên tập", None]),
            published_at=datetime(2025, 1, 1, tzinfo=UTC) + timedelta(hours=i),
            section=section,
            categories=[section],
        ),
    )


def reviewed_event(
    i: int, revision: int = 1, *, title: str | None = None, retract: bool = False
) -> ArticleReviewedEvent:
    """The decision publishing stores article i from; later revisions edit its title or
    retract it (the freshness scenario)."""
    source, external_id, article = article_for(i)
    article_id = article_id_for(source, external_id)
    if title is not None:
        article = article.model_copy(update={"title": title})
    return ArticleReviewedEvent(
        producer="moderation",
        subject=article_id,
        data=ArticleReviewed(
            article_id=article_id,
            source=source,
            external_id=external_id,
            revision=revision,
            decision=ReviewDecision.RETRACTED if retract else ReviewDecision.AUTO_PUBLISHED,
            reviewer="policy:trusted",
            reviewed_at=datetime.now(UTC),
            article=None if retract else article,
        ),
    )


def article_numbers(n: int) -> dict[str, int]:
    """Article id -> its number in the data set."""
    return {article_id_for(s, e): i for i, (s, e, _) in enumerate(map(article_for, range(n)))}


async def searchable_count(settings: StackSettings, ids: list[str]) -> int:
    client = AsyncOpenSearch(hosts=[settings.opensearch_url])
    try:
        resp = await client.count(
            index=SEARCH_ALIAS, body={"query": {"terms": {"article_id": ids}}}
        )
        return int(resp["count"])
    except Exception:  # the index is created by search on its first start
        return 0
    finally:
        await client.close()


async def load(settings: StackSettings, n: int, timeout_s: float) -> dict[str, Any]:
    """Publish the data set through publishing's consumer; wait until search has all of it."""
    ids = [article_id_for(s, e) for s, e, _ in (article_for(i) for i in range(n))]
    already = await searchable_count(settings, ids)
    if already == n:
        return {"loaded": 0, "seconds": 0.0, "already": n}
    start = time.monotonic()
    producer = AIOKafkaProducer(
        **admin_client_options(settings),
        acks="all",
        linger_ms=10,
        max_request_size=2 * 1024 * 1024,
    )
    await producer.start()
    try:
        futures = [
            await producer.send(ARTICLE_REVIEWED.name, encode(event), key=event.subject.encode())
            for event in (reviewed_event(i) for i in range(n))
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    produced = time.monotonic() - start
    deadline = time.monotonic() + timeout_s
    count = 0
    while time.monotonic() < deadline:
        count = await searchable_count(settings, ids)
        if count >= n:
            break
        await asyncio.sleep(0.5)
    if count < n:
        raise RuntimeError(f"only {count}/{n} articles searchable after {timeout_s:.0f}s")
    return {
        "loaded": n,
        "produced_s": round(produced, 1),
        "seconds": round(time.monotonic() - start, 1),
        "already": already,
    }
