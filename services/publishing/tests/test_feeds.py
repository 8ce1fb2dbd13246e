"""Unit tests of feed and sitemap rendering: valid XML with the expected content."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from lxml import etree
from lxml import html as lxml_html

from portal_publishing.feeds import (
    NEWS_NS,
    SITEMAP_NS,
    FeedItem,
    NewsItem,
    article_page,
    news_sitemap,
    rss,
    sitemap_index,
    urlset,
)

T0 = datetime(2026, 1, 5, 3, 0, tzinfo=UTC)
NS = {"sm": SITEMAP_NS, "news": NEWS_NS}


def items() -> list[FeedItem]:
    return [
        FeedItem(
            title="Tổng Bí thư tiếp đoàn đại biểu",
            url="https://portal.example/bai-viet/tong-bi-thu-aaaa1111",
            summary="Sáng nay, <Tổng Bí thư> & đoàn",
            published_at=T0,
            category="Tin hoạt động",
            author="Phóng viên",
        ),
        FeedItem(
            title="Hội nghị Trung ương",
            url="https://portal.example/bai-viet/hoi-nghi-bbbb2222",
            summary=None,
            published_at=T0 - timedelta(hours=1),
        ),
    ]


def render_rss(feed_items: list[FeedItem]) -> bytes:
    return rss(
        title="Tin hoạt động — Cổng",
        link="https://portal.example/",
        self_url="https://portal.example/rss/sections/tin-hoat-dong.xml",
        description="Tin mới nhất",
        items=feed_items,
        last_build=T0,
        copyright_="Cổng Thông tin điện tử Đảng Cộng sản Việt Nam",
    )


def test_rss_is_valid_rss_2_with_items_newest_first() -> None:
    body = render_rss(items())
    root = etree.fromstring(body)
    assert root.tag == "rss" and root.get("version") == "2.0"
    channel = root.find("channel")
    assert channel is not None
    assert channel.findtext("language") == "vi"
    assert channel.findtext("link") == "https://portal.example/"
    atom_self = channel.find("{http://www.w3.org/2005/Atom}link")
    assert atom_self is not None
    assert atom_self.get("href") == "https://portal.example/rss/sections/tin-hoat-dong.xml"
    assert channel.findtext("lastBuildDate") == "Mon, 05 Jan 2026 03:00:00 +0000"
    entries = channel.findall("item")
    assert [e.findtext("title") for e in entries] == [
        "Tổng Bí thư tiếp đoàn đại biểu",
        "Hội nghị Trung ương",
    ]
    first = entries[0]
    assert first.findtext("link") == "https://portal.example/bai-viet/tong-bi-thu-aaaa1111"
    assert first.findtext("guid") == first.findtext("link")
    assert first.findtext("description") == "Sáng nay, <Tổng Bí thư> & đoàn"  # escaped, intact
    assert first.findtext("category") == "Tin hoạt động"
    assert first.findtext("{http://purl.org/dc/elements/1.1/}creator") == "Phóng viên"
    # An item without a summary still has a description (RSS requires title or description).
    assert entries[1].findtext("description") == "Hội nghị Trung ương"


def test_rss_is_deterministic_so_its_etag_is_stable() -> None:
    assert render_rss(items()) == render_rss(items())


def test_empty_rss_is_valid() -> None:
    root = etree.fromstring(render_rss([]))
    assert root.find("channel/item") is None


def test_sitemap_index_lists_article_and_news_sitemaps() -> None:
    body = sitemap_index(
        [("https://p/sitemaps/articles-1.xml", T0), ("https://p/sitemaps/news.xml", None)]
    )
    root = etree.fromstring(body)
    assert root.tag == f"{{{SITEMAP_NS}}}sitemapindex"
    assert root.xpath("sm:sitemap/sm:loc/text()", namespaces=NS) == [
        "https://p/sitemaps/articles-1.xml",
        "https://p/sitemaps/news.xml",
    ]
    assert root.xpath("sm:sitemap/sm:lastmod/text()", namespaces=NS) == [
        "2026-01-05T03:00:00+00:00"
    ]


def test_urlset_has_loc_and_lastmod() -> None:
    root = etree.fromstring(urlset([("https://p/bai-viet/a-1", T0.replace(microsecond=5))]))
    assert root.tag == f"{{{SITEMAP_NS}}}urlset"
    assert root.xpath("sm:url/sm:loc/text()", namespaces=NS) == ["https://p/bai-viet/a-1"]
    assert root.xpath("sm:url/sm:lastmod/text()", namespaces=NS) == ["2026-01-05T03:00:00+00:00"]


def test_news_sitemap_has_the_google_news_fields() -> None:
    body = news_sitemap(
        [NewsItem(url="https://p/bai-viet/a-1", title="Đại hội Đảng & nhân dân", published_at=T0)],
        "Cổng Thông tin điện tử Đảng Cộng sản Việt Nam",
    )
    root = etree.fromstring(body)
    (url,) = root.xpath("sm:url", namespaces=NS)
    assert url.xpath("sm:loc/text()", namespaces=NS) == ["https://p/bai-viet/a-1"]
    assert url.xpath("news:news/news:publication/news:name/text()", namespaces=NS) == [
        "Cổng Thông tin điện tử Đảng Cộng sản Việt Nam"
    ]
    assert url.xpath("news:news/news:publication/news:language/text()", namespaces=NS) == ["vi"]
    assert url.xpath("news:news/news:publication_date/text()", namespaces=NS) == [
        "2026-01-05T03:00:00+00:00"
    ]
    assert url.xpath("news:news/news:title/text()", namespaces=NS) == ["Đại hội Đảng & nhân dân"]


def test_article_page_shows_local_time_and_the_body() -> None:
    body = article_page(
        title="Tiêu đề <b>",
        url="https://p/bai-viet/a-1",
        published_at=T0,
        section="Tin hoạt động",
        summary="Tóm tắt",
        body_html="<p>Đoạn <strong>một</strong></p>chữ rời",
        author=None,
        site_name="Cổng",
    )
    doc = lxml_html.fromstring(body)
    assert doc.get("lang") == "vi"
    assert doc.findtext(".//h1") == "Tiêu đề <b>"  # the title is text, never markup
    assert "10:00 05/01/2026" in doc.text_content()  # UTC+7
    assert doc.xpath("//strong/text()") == ["một"]
    assert doc.xpath("//link[@rel='canonical']/@href") == ["https://p/bai-viet/a-1"]


FORBIDDEN = "".join(chr(c) for c in range(0x20) if c not in (0x09, 0x0A, 0x0D)) + "\ufffe\uffff"


def test_characters_xml_forbids_never_break_a_document() -> None:
    """A stored row with them (from before normalize removed them) still renders well-formed."""
    dirty = FeedItem(
        title=f"Hội nghị{FORBIDDEN} tỉnh ủy",
        url="https://portal.example/bai-viet/hoi-nghi-cccc3333",
        summary=f"Tóm{FORBIDDEN} tắt",
        published_at=T0,
        category=f"Tin{FORBIDDEN}",
        author=f"Minh{FORBIDDEN} Anh",
    )
    feed = etree.fromstring(render_rss([dirty]))
    assert feed.findtext("channel/item/title") == "Hội nghị tỉnh ủy"
    assert feed.findtext("channel/item/description") == "Tóm tắt"
    news = etree.fromstring(
        news_sitemap([NewsItem(dirty.url, dirty.title, T0)], f"Cổng{FORBIDDEN}")
    )
    assert news.findtext("sm:url/news:news/news:title", namespaces=NS) == "Hội nghị tỉnh ủy"
    page = article_page(
        title=dirty.title,
        url=dirty.url,
        published_at=T0,
        section=f"Tin{FORBIDDEN}",
        summary=dirty.summary,
        body_html=f"<p>Đoạn{FORBIDDEN} một</p>",
        author=dirty.author,
        site_name="Cổng",
    )
    assert lxml_html.fromstring(page).findtext(".//h1") == "Hội nghị tỉnh ủy"
