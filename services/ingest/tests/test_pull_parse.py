"""Parsing real-shaped feeds, sitemaps and article pages (no network)."""

from __future__ import annotations

from datetime import datetime

import pytest

from portal_ingest.pull.domain import ConnectorKind, ErrorKind
from portal_ingest.pull.parse import (
    ParseError,
    extract_page,
    parse_feed,
    parse_sitemap,
)

from .feed_samples import (
    PARAGRAPHS,
    VN,
    Entry,
    article_page,
    atom,
    json_feed,
    rss,
    sitemap_index,
    urlset,
)

WHEN = datetime(2025, 6, 10, 8, 0, tzinfo=VN)


def _entries() -> list[Entry]:
    return [
        Entry(
            "tinh-001",
            "Hội nghị Ban Chấp hành Đảng bộ tỉnh lần thứ 15",
            "https://tinh.example.vn/tin/hoi-nghi-15.html?utm_source=rss",
            WHEN,
            categories=["Xây dựng Đảng", "Thời sự"],
            image="https://tinh.example.vn/upload/anh-1.jpg",
        ),
        Entry("tinh-002", "Tin thứ hai", "/tin/2.html", WHEN, body=None),
    ]


def test_rss_items_with_content_categories_media_and_relative_links() -> None:
    feed = parse_feed(ConnectorKind.RSS, rss(_entries()), "https://tinh.example.vn/rss", 100)
    assert feed.complete and feed.warnings == []
    first, second = feed.items
    assert first.key == "tinh-001"
    assert first.title == "Hội nghị Ban Chấp hành Đảng bộ tỉnh lần thứ 15"
    assert first.categories == ("Xây dựng Đảng", "Thời sự")
    assert first.published_at == WHEN
    assert "Ban Thường vụ" in (first.body_html or "")
    assert [i.url for i in first.images] == ["https://tinh.example.vn/upload/anh-1.jpg"]
    assert second.url == "https://tinh.example.vn/tin/2.html"  # resolved against the feed
    assert second.body_html is None and second.summary


def test_atom() -> None:
    feed = parse_feed(ConnectorKind.ATOM, atom(_entries()), "https://bo.example.gov.vn/atom", 100)
    assert [i.key for i in feed.items] == [
        "tag:bo.example.gov.vn,2025:tinh-001",
        "tag:bo.example.gov.vn,2025:tinh-002",
    ]
    assert feed.items[0].author == "Phóng viên"
    assert feed.items[0].categories == ("Xây dựng Đảng", "Thời sự")


def test_json_feed() -> None:
    feed = parse_feed(
        ConnectorKind.JSONFEED, json_feed(_entries()), "https://uyban.example.vn/feed.json", 100
    )
    first = feed.items[0]
    assert first.key == "tinh-001"
    assert first.categories == ("Xây dựng Đảng", "Thời sự")
    assert first.images[0].url == "https://tinh.example.vn/upload/anh-1.jpg"
    assert first.published_at == WHEN


def test_json_feed_bad_item_is_skipped_with_a_warning_not_the_feed() -> None:
    text = json_feed(_entries()).replace('"id": "tinh-002"', '"id": null')
    feed = parse_feed(ConnectorKind.JSONFEED, text, "https://u.vn/f.json", 100)
    assert [i.key for i in feed.items] == ["tinh-001"]
    assert feed.warnings and "item 1" in feed.warnings[0]


def test_json_that_is_not_a_json_feed() -> None:
    with pytest.raises(ParseError) as err:
        parse_feed(ConnectorKind.JSONFEED, '{"items": []}', "https://u.vn/f.json", 10)
    assert err.value.kind is ErrorKind.NOT_A_FEED and "version" in err.value.message


def test_broken_rss_is_recovered_and_marked_incomplete() -> None:
    broken = rss(_entries()).replace("</item>", "", 1)
    feed = parse_feed(ConnectorKind.RSS, broken, "https://t.vn/rss", 100)
    assert not feed.complete
    assert feed.warnings and "malformed XML" in feed.warnings[0]
    assert feed.items  # what could be read is kept


def test_unreadable_document_is_an_error() -> None:
    with pytest.raises(ParseError) as err:
        parse_feed(ConnectorKind.RSS, "<html><body>Trang lỗi</body></html>", "https://t.vn/", 10)
    assert err.value.kind in (ErrorKind.NOT_A_FEED, ErrorKind.MALFORMED)


@pytest.mark.parametrize("kind", [ConnectorKind.RSS, ConnectorKind.SITEMAP])
def test_entity_declarations_are_refused(kind: ConnectorKind) -> None:
    doc = (
        '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;">]>'
        "<rss><channel><title>&b;</title></channel></rss>"
    )
    with pytest.raises(ParseError, match="entity"):
        if kind is ConnectorKind.RSS:
            parse_feed(kind, doc, "https://t.vn/", 10)
        else:
            parse_sitemap(doc, "https://t.vn/", 10)


def test_external_entities_are_never_resolved() -> None:
    # No declaration of ours: an external DTD reference is simply not loaded.
    doc = (
        '<?xml version="1.0"?><!DOCTYPE urlset SYSTEM "http://169.254.169.254/x.dtd">'
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        "<url><loc>https://t.vn/a</loc></url></urlset>"
    )
    parsed = parse_sitemap(doc, "https://t.vn/sitemap.xml", 10)
    assert [i.url for i in parsed.items] == ["https://t.vn/a"]


def test_news_sitemap_with_images() -> None:
    doc = urlset(
        [("https://t.vn/tin/a.html", WHEN), ("https://t.vn/tin/b.html", None)],
        news=True,
        titles={"https://t.vn/tin/a.html": "Tiêu đề tin A"},
    )
    parsed = parse_sitemap(doc, "https://t.vn/news.xml", 100)
    a, b = parsed.items
    assert a.title == "Tiêu đề tin A"
    assert a.published_at == WHEN
    assert a.categories == ("Xây dựng Đảng", "Thời sự")
    assert a.images[0].url == "https://t.vn/tin/a.html.jpg"
    assert b.published_at is None and b.updated_at is None


def test_sitemap_index() -> None:
    doc = sitemap_index([("https://t.vn/s-2025-06.xml", WHEN), ("/s-2025-05.xml", None)])
    parsed = parse_sitemap(doc, "https://t.vn/sitemap.xml", 100)
    assert [c.url for c in parsed.children] == [
        "https://t.vn/s-2025-06.xml",
        "https://t.vn/s-2025-05.xml",
    ]
    assert parsed.items == []


def test_broken_sitemap_is_recovered_and_incomplete() -> None:
    doc = urlset([("https://t.vn/a", WHEN), ("https://t.vn/b", WHEN)]).replace("</urlset>", "")
    parsed = parse_sitemap(doc, "https://t.vn/s.xml", 100)
    assert not parsed.complete and len(parsed.items) == 2
    assert "malformed XML" in parsed.warnings[0]


def test_sitemap_over_the_limit_is_truncated_and_incomplete() -> None:
    doc = urlset([(f"https://t.vn/{i}", None) for i in range(5)])
    parsed = parse_sitemap(doc, "https://t.vn/s.xml", 3)
    assert len(parsed.items) == 3 and not parsed.complete


def test_article_page_main_content_keeps_images_and_drops_boilerplate() -> None:
    html = article_page(
        "Hội nghị lần thứ 15",
        PARAGRAPHS,
        published=WHEN,
        images=["/upload/anh-1.jpg", "https://cdn.t.vn/anh-2.png"],
        canonical="https://t.vn/tin/hoi-nghi-15.html",
    )
    page = extract_page(html, "https://t.vn/tin/hoi-nghi-15.html?from=rss")
    assert page.title == "Hội nghị lần thứ 15"
    assert "Ban Chấp hành Đảng bộ tỉnh" in page.body_html
    assert "Bản quyền" not in page.body_html  # footer
    assert "Tin liên quan" not in page.body_html  # sidebar
    assert "<script" not in page.body_html
    urls = [i.url for i in page.images]
    assert "https://t.vn/upload/anh-1.jpg" in urls and "https://cdn.t.vn/anh-2.png" in urls
    assert '<img src="https://t.vn/upload/anh-1.jpg"' in page.body_html
    assert page.canonical_url == "https://t.vn/tin/hoi-nghi-15.html"
    assert page.published_at == WHEN
    assert "Xây dựng Đảng" in page.categories


def test_page_without_content_is_an_error() -> None:
    with pytest.raises(ParseError, match="no article content"):
        extract_page("<html><body><nav>Trang chủ</nav></body></html>", "https://t.vn/x")
