"""View models of the website's pages: pure functions of the APIs' JSON."""

from __future__ import annotations

import json

from portal_web import views
from portal_web.apis import BadRequest, NotFound, RateLimited, Unavailable
from portal_web.pages import page_error_for
from portal_web.views import Site

SITE = Site.of(
    {
        "blocks": [
            {
                "code": "tin-hang-ngay",
                "name": "Tin hằng ngày",
                "sections": [
                    {
                        "code": "tong-bi-thu",
                        "name": "Tổng Bí thư",
                        "kind": "leader",
                        "block": "tin-hang-ngay",
                        "standard": False,
                    },
                    {
                        "code": "tin-hoat-dong",
                        "name": "Tin hoạt động",
                        "kind": "news",
                        "block": "tin-hang-ngay",
                        "standard": False,
                    },
                ],
            },
            {
                "code": "chuyen-trang",
                "name": "Chuyên trang",
                "sections": [
                    {
                        "code": "ct-tin-tuc-hoat-dong",
                        "name": "Tin tức, hoạt động",
                        "kind": "subsite-standard",
                        "block": "chuyen-trang",
                        "standard": True,
                    },
                ],
            },
            {
                "code": "tuong-tac",
                "name": "Tương tác",
                "sections": [
                    {
                        "code": "hoi-dap",
                        "name": "Hỏi đáp trực tuyến",
                        "kind": "engagement",
                        "block": "tuong-tac",
                        "standard": False,
                    },
                ],
            },
        ],
        "standard_sections": ["ct-tin-tuc-hoat-dong"],
        "subsites": [
            {"code": "bo-y-te", "name": "Bộ Y tế", "kind": "ministry"},
            {"code": "tp-ha-noi", "name": "Thành ủy Hà Nội", "kind": "province"},
            {"code": "bao-nhan-dan", "name": "Báo Nhân Dân", "kind": "central-party-body"},
        ],
    }
)

MEDIA = {
    "original_url": "https://example.vn/a.jpg",
    "object_key": "images/ab/cd.jpg",
    "width": 1600,
    "height": 1000,
    "caption": "Quang cảnh hội nghị",
    "renditions": {
        "1024": "images/ab/1024.webp",
        "320": "images/ab/320.webp",
        "640": "images/ab/640.webp",
    },
}


def article(**extra: object) -> dict[str, object]:
    return {
        "article_id": "a-1",
        "slug": "hoi-nghi-a1",
        "url_path": "/bai-viet/hoi-nghi-a1",
        "title": "Hội nghị </script><script>alert(1)</script>",
        "summary": "Tóm tắt & ý chính",
        "author": None,
        "section": {"code": "tin-hoat-dong", "name": "Tin hoạt động"},
        "subsite": {"code": "bao-nhan-dan", "name": "Báo Nhân Dân"},
        "published_at": "2026-03-28T01:30:00Z",
        "updated_at": "2026-03-28T01:30:00Z",
        "lead_image": MEDIA,
        "body_html": "<p>Nội dung</p>",
        "canonical_url": "https://nhandan.vn/bai",
        **extra,
    }


def test_picture_lists_the_webp_renditions_by_width_with_the_caption() -> None:
    pic = views.picture(MEDIA, alt="Tiêu đề", sizes="100vw")
    assert pic is not None
    assert pic.srcset == (
        "/media/images/ab/320.webp 320w, /media/images/ab/640.webp 640w, "
        "/media/images/ab/1024.webp 1024w"
    )
    assert pic.src == "/media/images/ab/640.webp"
    assert (pic.width, pic.height) == (1600, 1000)
    assert pic.alt == pic.caption == "Quang cảnh hội nghị"
    assert views.picture(None, alt="x", sizes="") is None
    assert views.picture({"original_url": "https://x/a.jpg"}, alt="x", sizes="") is None


def test_article_view_has_breadcrumb_canonical_and_json_ld_that_cannot_close_its_script() -> None:
    view = views.article_view(SITE, article(), base_url="https://portal.vn", site_name="Cổng")
    assert [c.label for c in view.breadcrumb] == ["Trang chủ", "Tin hằng ngày", "Tin hoạt động"]
    assert view.canonical == "https://portal.vn/bai-viet/hoi-nghi-a1"
    assert view.og_image == "https://portal.vn/media/images/ab/640.webp"
    assert "</script>" not in view.json_ld and "<" not in view.json_ld
    graph = json.loads(view.json_ld)["@graph"]
    news = graph[0]
    assert news["@type"] == "NewsArticle"
    assert news["headline"].startswith("Hội nghị </script>")
    assert news["datePublished"] == "2026-03-28T08:30:00+07:00"
    assert news["image"] == ["https://portal.vn/media/images/ab/640.webp"]
    assert graph[1]["@type"] == "BreadcrumbList"
    assert view.keys == ["article:a-1", "site"]
    assert view.published == "08:30, 28/03/2026" and view.updated is None
    assert view.source_url == "https://nhandan.vn/bai"
    assert (
        views.article_view(
            SITE, article(canonical_url="javascript:alert(1)"), base_url="", site_name=""
        ).source_url
        is None
    )


def test_a_partner_article_is_placed_under_its_sub_site() -> None:
    item = article(
        section={"code": "ct-tin-tuc-hoat-dong", "name": "Tin tức, hoạt động"},
        subsite={"code": "bo-y-te", "name": "Bộ Y tế"},
    )
    crumbs = views.breadcrumb_for(SITE, item)
    assert [(c.label, c.href) for c in crumbs] == [
        ("Trang chủ", "/"),
        ("Chuyên trang", "/chuyen-trang"),
        ("Bộ Y tế", "/chuyen-trang/bo-y-te"),
        ("Tin tức, hoạt động", "/chuyen-trang/bo-y-te?muc=ct-tin-tuc-hoat-dong"),
    ]


def test_page_links_keep_the_query_and_show_gaps() -> None:
    links = views.page_links("/tim-kiem", {"q": "đảng"}, page=5, total=200, size=10)
    labels = [link.label for link in links]
    assert labels == ["‹ Trang trước", "1", "…", "3", "4", "5", "6", "7", "…", "20", "Trang sau ›"]
    current = next(link for link in links if link.current)
    assert current.label == "5" and current.href is None
    assert links[1].href == "/tim-kiem?q=%C4%91%E1%BA%A3ng"  # page 1 has no page parameter
    assert links[-1].href == "/tim-kiem?q=%C4%91%E1%BA%A3ng&trang=6"
    assert views.page_links("/x", {}, page=1, total=10, size=10) == []


def test_cursor_pagination_links_next_and_back_to_the_newest() -> None:
    first = views.cursor_pager("/chuyen-muc/a", {}, next_cursor="c1", on_first_page=True)
    assert (first.next_href, first.first_href) == ("/chuyen-muc/a?tiep=c1", None)
    last = views.cursor_pager(
        "/chuyen-trang/b", {"muc": "m"}, next_cursor=None, on_first_page=False
    )
    assert (last.next_href, last.first_href) == (None, "/chuyen-trang/b?muc=m")


def test_search_view_names_facets_toggles_them_and_keeps_highlights_safe() -> None:
    form = views.SearchView(
        q="dang",
        sections=["tin-hoat-dong"],
        sources=[],
        date_from="",
        date_to="",
        sort="relevance",
        page=1,
        total=0,
    )
    answer = {
        "total": 1,
        "hits": [
            {
                "article_id": "a-1",
                "title": "Đảng <b>",
                "summary": "",
                "url_path": "/bai-viet/dang",
                "slug": "dang",
                "section": "tin-hoat-dong",
                "source": "bo-y-te",
                "published_at": "2026-03-28T01:30:00+00:00",
                "highlight": {
                    "title": ["<mark>Đảng</mark> &lt;b&gt;<img src=x onerror=alert(1)>"],
                    "body": [],
                },
            }
        ],
        "facets": {
            "section": [{"key": "tin-hoat-dong", "count": 1}],
            "source": [{"key": "bo-y-te", "count": 1}],
        },
    }
    view = views.search_view(SITE, form, answer)
    hit = view.hits[0]
    assert str(hit.title) == "<mark>Đảng</mark> &lt;b&gt;"
    assert (hit.section, hit.source) == ("Tin hoạt động", "Bộ Y tế")
    section = view.section_facets[0]
    assert section.label == "Tin hoạt động" and section.selected
    assert "chuyen-muc" not in section.href  # choosing it again removes the filter
    assert "nguon=bo-y-te" in view.source_facets[0].href


def test_question_view_says_who_answered_and_how_long_it_took() -> None:
    q = views.question_view(
        {
            "id": "q1",
            "title": None,
            "question": "Xin hỏi về bảo hiểm y tế cho người cao tuổi ở địa phương?\n\nCảm ơn.",
            "asker": None,
            "topic": "y-te",
            "agency": "bo-y-te",
            "asked_at": "2026-03-28T01:00:00Z",
            "answered_at": "2026-03-29T04:30:00Z",
            "answer_html": "<p>Trả lời</p><script>x</script>",
            "answered_by": None,
        },
        topics={"y-te": "Y tế"},
        site=SITE,
    )
    assert q.title.startswith("Xin hỏi về bảo hiểm")
    assert q.question == ["Xin hỏi về bảo hiểm y tế cho người cao tuổi ở địa phương?", "Cảm ơn."]
    assert (q.asker, q.topic, q.agency, q.answered_by) == ("Bạn đọc", "Y tế", "Bộ Y tế", "Bộ Y tế")
    assert q.time_to_answer == "1 ngày 3 giờ"
    assert str(q.answer) == "<p>Trả lời</p>"


def test_dialogues_live_first_then_upcoming_soonest_then_ended_latest() -> None:
    def d(code: str, phase: str, starts: str) -> views.DialogueView:
        return views.dialogue_view({"code": code, "phase": phase, "starts_at": starts})

    order = views.dialogue_order(
        [
            d("old", "ended", "2026-01-01T00:00:00Z"),
            d("later", "upcoming", "2026-05-01T00:00:00Z"),
            d("now", "live", "2026-04-01T00:00:00Z"),
            d("soon", "upcoming", "2026-04-02T00:00:00Z"),
            d("recent", "ended", "2026-03-01T00:00:00Z"),
        ]
    )
    assert [x.code for x in order] == ["now", "soon", "later", "recent", "old"]


def test_status_links_point_at_the_website_pages() -> None:
    assert views.public_href("/v1/qa/questions/q1") == "/hoi-dap/cau-hoi/q1"
    assert views.public_href("/v1/dialogues/dt-1/transcript") == "/doi-thoai/dt-1"
    assert views.public_href("/v1/forum/threads/t1") == "/dien-dan/bai/t1"
    assert views.public_href("/v1/articles/a1/comments") is None
    assert views.public_href(None) is None


def test_home_view_takes_the_lead_keeps_engagement_apart_and_names_its_keys() -> None:
    teaser = article()
    home = {
        "blocks": [
            {
                "code": "tin-hang-ngay",
                "name": "Tin hằng ngày",
                "sections": SITE.blocks[0]["sections"],
                "articles": [teaser, {**teaser, "article_id": "a-2", "lead_image": None}],
            },
            {
                "code": "chuyen-trang",
                "name": "Chuyên trang",
                "sections": SITE.blocks[1]["sections"],
                "articles": [],
            },
            {
                "code": "tuong-tac",
                "name": "Tương tác",
                "sections": SITE.blocks[2]["sections"],
                "articles": [],
            },
        ],
        "leaders": [{"section": SITE.blocks[0]["sections"][0], "articles": [teaser]}],
    }
    engagement = views.EngagementBlock(
        dialogues=[views.dialogue_view({"code": "dt", "phase": "upcoming", "starts_at": ""})]
    )
    view = views.home_view(SITE, home, engagement)
    assert view.lead is not None and view.lead.picture is not None
    assert [b.code for b in view.blocks] == ["tin-hang-ngay"]
    assert view.subsites is not None and view.subsites.code == "chuyen-trang"
    assert [s.label for s in view.blocks[0].sections] == ["Tin hoạt động"]  # leaders apart
    assert [ld.name for ld in view.leaders] == ["Tổng Bí thư"]
    assert {"home", "site", "qa", "forum", "dialogue:dt"} <= set(view.keys)


def test_navigation_links_the_news_sections_sub_sites_and_engagement_pages() -> None:
    nav = SITE.nav("hoi-dap")
    assert [link.href for link in nav] == [
        "/",
        "/chuyen-muc/tin-hoat-dong",
        "/chuyen-trang",
        "/hoi-dap",
        "/doi-thoai",
        "/gop-y",
        "/dien-dan",
    ]
    assert [link.label for link in nav if link.current] == ["Hỏi đáp"]
    groups = SITE.subsites_by_kind()
    assert [g[0] for g in groups][:1] == ["Các cơ quan Đảng Trung ương"]


def test_an_api_answer_no_page_handled_becomes_a_page_never_a_500() -> None:
    limited = page_error_for(RateLimited("publishing", 7))
    assert (limited.status, limited.retry_after_s) == (429, 7)
    assert "chờ" in limited.title
    assert page_error_for(NotFound("publishing", 404)).status == 404
    for failed in (Unavailable("search", 502), BadRequest("engagement", 400)):
        assert (page_error_for(failed).status, page_error_for(failed).retry_after_s) == (503, 30)
