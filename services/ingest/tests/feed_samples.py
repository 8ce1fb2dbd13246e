"""Real-shaped feeds, sitemaps and article pages, as Vietnamese provincial and ministry portals
publish them (RSS 2.0 with content:encoded and media, Atom, JSON Feed, sitemap index, urlset,
news sitemap with image extension, article pages with navigation and footer)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from html import escape

VN = timezone(timedelta(hours=7))


@dataclass
class Entry:
    guid: str
    title: str
    link: str
    published: datetime
    summary: str = "Tóm tắt: Ban Thường vụ Tỉnh ủy họp thường kỳ."
    body: str | None = "<p>Sáng nay, Ban Thường vụ Tỉnh ủy họp phiên thường kỳ tháng 6.</p>"
    categories: list[str] = field(default_factory=lambda: ["Thời sự"])
    image: str | None = None
    author: str = "Phóng viên"


def rss(
    entries: list[Entry], *, title: str = "Cổng TTĐT tỉnh — Tin tức", encoding: str = "utf-8"
) -> str:
    items = []
    for e in entries:
        cats = "".join(f"<category><![CDATA[{c}]]></category>" for c in e.categories)
        body = f"<content:encoded><![CDATA[{e.body}]]></content:encoded>" if e.body else ""
        media = (
            f'<media:content url="{e.image}" medium="image" type="image/jpeg">'
            f"<media:title>Ảnh minh họa</media:title></media:content>"
            f'<enclosure url="{e.image}" type="image/jpeg" length="0"/>'
            if e.image
            else ""
        )
        items.append(
            f"""
    <item>
      <title>{escape(e.title)}</title>
      <link>{escape(e.link)}</link>
      <guid isPermaLink="false">{escape(e.guid)}</guid>
      <pubDate>{format_datetime(e.published)}</pubDate>
      <author>{escape(e.author)}</author>
      {cats}
      <description><![CDATA[{e.summary}]]></description>
      {body}
      {media}
    </item>"""
        )
    return f"""<?xml version="1.0" encoding="{encoding}"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"
     xmlns:media="http://search.yahoo.com/mrss/" xmlns:atom="http://www.w3.org/2005/Atom">
  <channel>
    <title>{escape(title)}</title>
    <link>https://tinh.example.vn/</link>
    <description>Tin tức, sự kiện của tỉnh</description>
    <language>vi-VN</language>
    <lastBuildDate>{format_datetime(datetime(2025, 6, 10, 9, 0, tzinfo=VN))}</lastBuildDate>
    <ttl>15</ttl>{"".join(items)}
  </channel>
</rss>
"""


def atom(entries: list[Entry]) -> str:
    parts = []
    for e in entries:
        cats = "".join(f'<category term="{escape(c)}"/>' for c in e.categories)
        parts.append(
            f"""
  <entry>
    <title type="html">{escape(e.title)}</title>
    <link rel="alternate" type="text/html" href="{escape(e.link)}"/>
    <id>{escape(e.guid if ":" in e.guid else "tag:bo.example.gov.vn,2025:" + e.guid)}</id>
    <published>{e.published.isoformat()}</published>
    <updated>{e.published.isoformat()}</updated>
    <author><name>{escape(e.author)}</name></author>
    {cats}
    <summary type="html">{escape(e.summary)}</summary>
    {f'<content type="html">{escape(e.body)}</content>' if e.body else ""}
  </entry>"""
        )
    return f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="vi">
  <title>Bộ — Tin hoạt động</title>
  <link href="https://bo.example.gov.vn/"/>
  <id>tag:bo.example.gov.vn,2025:feed</id>
  <updated>2025-06-10T09:00:00+07:00</updated>{"".join(parts)}
</feed>
"""


def json_feed(entries: list[Entry]) -> str:
    import json

    return json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "title": "Ủy ban — Tin tức",
            "home_page_url": "https://uyban.example.vn/",
            "language": "vi",
            "items": [
                {
                    "id": e.guid,
                    "url": e.link,
                    "title": e.title,
                    "content_html": e.body,
                    "summary": e.summary,
                    "image": e.image,
                    "date_published": e.published.isoformat(),
                    "authors": [{"name": e.author}],
                    "tags": e.categories,
                    "_ext": {"views": 3},
                }
                for e in entries
            ],
        },
        ensure_ascii=False,
    )


def urlset(
    urls: list[tuple[str, datetime | None]],
    *,
    news: bool = False,
    titles: dict[str, str] | None = None,
) -> str:
    rows = []
    for loc, lastmod in urls:
        lm = f"<lastmod>{lastmod.isoformat()}</lastmod>" if lastmod else ""
        extra = ""
        if news and lastmod:
            extra = f"""
    <news:news>
      <news:publication><news:name>Báo Tỉnh</news:name><news:language>vi</news:language></news:publication>
      <news:publication_date>{lastmod.isoformat()}</news:publication_date>
      <news:title>{escape((titles or {}).get(loc, "Tin mới"))}</news:title>
      <news:keywords>Xây dựng Đảng, Thời sự</news:keywords>
    </news:news>
    <image:image><image:loc>{loc}.jpg</image:loc><image:caption>Ảnh</image:caption></image:image>"""
        rows.append(f"  <url><loc>{escape(loc)}</loc>{lm}{extra}\n  </url>")
    body = "\n".join(rows)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
        xmlns:news="http://www.google.com/schemas/sitemap-news/0.9"
        xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">
{body}
</urlset>
"""


def sitemap_index(children: list[tuple[str, datetime | None]]) -> str:
    rows = "\n".join(
        f"  <sitemap><loc>{escape(loc)}</loc>"
        + (f"<lastmod>{lm.isoformat()}</lastmod>" if lm else "")
        + "</sitemap>"
        for loc, lm in children
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
{rows}
</sitemapindex>
"""


def article_page(
    title: str,
    paragraphs: list[str],
    *,
    published: datetime | None = None,
    images: list[str] | None = None,
    canonical: str | None = None,
    section: str = "Xây dựng Đảng",
    charset: str = "utf-8",
) -> str:
    figs = "".join(
        f'<figure class="image"><img src="{src}" alt="Ảnh {i}"><figcaption>Ảnh {i}</figcaption></figure>'
        for i, src in enumerate(images or [], 1)
    )
    paras = "".join(f"<p>{escape(p)}</p>" for p in paragraphs)
    meta_date = (
        f'<meta property="article:published_time" content="{published.isoformat()}">'
        if published
        else ""
    )
    canon = f'<link rel="canonical" href="{canonical}">' if canonical else ""
    lead = f'<meta property="og:image" content="{images[0]}">' if images else ""
    return f"""<!DOCTYPE html>
<html lang="vi"><head><meta charset="{charset}">
<title>{escape(title)} - Cổng thông tin điện tử tỉnh</title>
<meta property="og:title" content="{escape(title)}">
<meta property="article:section" content="{escape(section)}">
{meta_date}{lead}{canon}
<script>window.dataLayer=[];</script>
</head><body>
<header><nav><a href="/">Trang chủ</a> | <a href="/tin-tuc">Tin tức</a> | <a href="/lien-he">Liên hệ</a></nav></header>
<div class="breadcrumb"><a href="/">Trang chủ</a> › {escape(section)}</div>
<main><article class="detail">
<h1 class="title">{escape(title)}</h1>
<div class="meta">Cập nhật: 10/06/2025 08:00</div>
<div class="content">{paras}{figs}</div>
</article>
<aside class="related"><h3>Tin liên quan</h3><ul><li><a href="/tin/khac-1.html">Tin khác một</a></li><li><a href="/tin/khac-2.html">Tin khác hai</a></li></ul></aside>
</main>
<footer>Bản quyền © Cổng TTĐT tỉnh. Địa chỉ: số 1 đường Trần Hưng Đạo. Điện thoại: 0123 456 789.</footer>
</body></html>
"""


PARAGRAPHS = [
    "Sáng 10/6, Ban Chấp hành Đảng bộ tỉnh tổ chức Hội nghị lần thứ 15 để đánh giá tình hình "
    "thực hiện nhiệm vụ chính trị sáu tháng đầu năm và đề ra phương hướng sáu tháng cuối năm.",
    "Phát biểu chỉ đạo, đồng chí Bí thư Tỉnh ủy nhấn mạnh yêu cầu tiếp tục đẩy mạnh xây dựng, "
    "chỉnh đốn Đảng và hệ thống chính trị trong sạch, vững mạnh toàn diện.",
    "Hội nghị đã thảo luận, cho ý kiến vào dự thảo các văn bản trình Đại hội đại biểu Đảng bộ "
    "tỉnh lần thứ XVIII, nhiệm kỳ 2025 - 2030, với nhiều ý kiến tâm huyết, trách nhiệm.",
]
