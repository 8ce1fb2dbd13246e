"""View models: what each page shows, built from the APIs' JSON (pure, no I/O).

The templates only lay these out. Links are the website's own paths; every value that came
from an API is plain text the templates escape, except the HTML this module marks as markup
(article bodies from publishing, answers from the desk, search highlights), each cleaned here
or sanitised at its source as documented on it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import nh3
from markupsafe import Markup

from portal_web import present

MEDIA_PREFIX = "/media/"
ARTICLE_PREFIX = "/bai-viet/"
LEADER_KIND = "leader"
SUBSITE_KIND = "subsite-standard"
ENGAGEMENT_KIND = "engagement"
# The engagement block's sections are the website's own pages.
ENGAGEMENT_PATHS = {
    "hoi-dap": "/hoi-dap",
    "doi-thoai": "/doi-thoai",
    "gop-y": "/gop-y",
    "dien-dan": "/dien-dan",
}
SUBSITE_KIND_LABELS = {
    "central-party-body": "Các cơ quan Đảng Trung ương",
    "socio-political": "Mặt trận Tổ quốc và các tổ chức chính trị - xã hội",
    "ministry": "Bộ, ngành Trung ương",
    "province": "Tỉnh ủy, thành ủy",
}
# Answers (from the desk) are built from plain text; kept to these tags all the same.
_ANSWER_TAGS = {"p", "br", "strong", "em", "b", "i", "ul", "ol", "li", "a"}


@dataclass(frozen=True)
class Link:
    label: str
    href: str
    current: bool = False


@dataclass(frozen=True)
class Picture:
    src: str
    srcset: str
    sizes: str
    width: int | None
    height: int | None
    alt: str
    caption: str | None


@dataclass(frozen=True)
class Teaser:
    title: str
    href: str
    summary: str | None
    published: str
    published_iso: str
    section: Link | None
    subsite: Link | None
    picture: Picture | None


def media_url(key: str) -> str:
    return MEDIA_PREFIX + key.lstrip("/")


def picture(media: Mapping[str, Any] | None, *, alt: str, sizes: str) -> Picture | None:
    """The stored image with its WebP renditions as ``srcset`` (nothing when not stored)."""
    if not media:
        return None
    renditions: dict[str, str] = media.get("renditions") or {}
    widths = sorted((int(w), key) for w, key in renditions.items() if str(w).isdigit())
    key = media.get("object_key") or (widths[-1][1] if widths else None)
    if not key:
        return None
    width, height = media.get("width"), media.get("height")
    # The src is the rendition nearest a phone's width, for browsers without srcset.
    src_key = next((k for w, k in widths if w >= 640), widths[-1][1]) if widths else key
    caption = (media.get("caption") or "").strip() or None
    return Picture(
        src=media_url(src_key),
        srcset=", ".join(f"{media_url(k)} {w}w" for w, k in widths),
        sizes=sizes,
        width=width if isinstance(width, int) else None,
        height=height if isinstance(height, int) else None,
        alt=caption or alt,
        caption=caption,
    )


def article_href(item: Mapping[str, Any]) -> str:
    path = item.get("url_path") or ""
    if isinstance(path, str) and path.startswith(ARTICLE_PREFIX):
        return path
    return ARTICLE_PREFIX + str(item.get("slug", ""))


def plain_paragraphs(text: str) -> list[str]:
    """A reader's text as paragraphs (blank lines split them); the templates escape each."""
    return [p.strip() for p in text.replace("\r\n", "\n").split("\n\n") if p.strip()]


def safe_answer(html: str | None) -> Markup | None:
    if not html:
        return None
    return Markup(  # noqa: S704 - cleaned by nh3 to a few inline and list tags
        nh3.clean(html, tags=_ANSWER_TAGS, attributes={"a": {"href"}}, link_rel="nofollow noopener")
    )


def safe_highlight(fragment: str) -> Markup:
    """Search snippets: every character escaped by search except its <mark>; kept to that."""
    return Markup(nh3.clean(fragment, tags={"mark"}, attributes={}))  # noqa: S704


# --- the site's structure ---------------------------------------------------------------------


@dataclass(frozen=True)
class SectionInfo:
    code: str
    name: str
    kind: str
    block: str
    standard: bool


@dataclass(frozen=True)
class SubsiteInfo:
    code: str
    name: str
    kind: str


@dataclass
class Site:
    """GET /v1/site as lookups: names, links, the navigation."""

    blocks: list[dict[str, Any]]
    sections: dict[str, SectionInfo]
    subsites: dict[str, SubsiteInfo]
    standard_sections: list[str]

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> Site:
        sections = {
            s["code"]: SectionInfo(
                s["code"], s["name"], s["kind"], s.get("block", b["code"]), s.get("standard", False)
            )
            for b in data.get("blocks", [])
            for s in b.get("sections", [])
        }
        subsites = {
            s["code"]: SubsiteInfo(s["code"], s["name"], s.get("kind", ""))
            for s in data.get("subsites", [])
        }
        return cls(
            blocks=list(data.get("blocks", [])),
            sections=sections,
            subsites=subsites,
            standard_sections=list(data.get("standard_sections", [])),
        )

    def block_name(self, code: str) -> str:
        return next((b["name"] for b in self.blocks if b["code"] == code), code)

    def section_name(self, code: str | None) -> str:
        if not code:
            return ""
        info = self.sections.get(code)
        return info.name if info else code

    def subsite_name(self, code: str | None) -> str:
        if not code:
            return ""
        info = self.subsites.get(code)
        return info.name if info else code

    def section_href(self, code: str) -> str:
        return ENGAGEMENT_PATHS.get(code) or f"/chuyen-muc/{code}"

    def nav(self, active: str | None) -> list[Link]:
        links = [Link("Trang chủ", "/", active == "home")]
        for kind in ("news", "documents"):
            links += [
                Link(s.name, self.section_href(s.code), active == f"section:{s.code}")
                for s in self.sections.values()
                if s.kind == kind
            ]
        links.append(Link("Chuyên trang", "/chuyen-trang", active == "subsites"))
        for code, label in (
            ("hoi-dap", "Hỏi đáp"),
            ("doi-thoai", "Đối thoại"),
            ("gop-y", "Góp ý"),
            ("dien-dan", "Diễn đàn"),
        ):
            links.append(Link(label, ENGAGEMENT_PATHS[code], active == code))
        return links

    def subsites_by_kind(self) -> list[tuple[str, list[SubsiteInfo]]]:
        groups: dict[str, list[SubsiteInfo]] = {}
        for sub in self.subsites.values():
            groups.setdefault(sub.kind, []).append(sub)
        order = list(SUBSITE_KIND_LABELS)
        ranked = sorted(groups, key=lambda k: (order.index(k) if k in order else len(order), k))
        return [(SUBSITE_KIND_LABELS.get(k, k), groups[k]) for k in ranked]

    def teaser(
        self, item: Mapping[str, Any], *, sizes: str = "(max-width: 640px) 100vw, 320px"
    ) -> Teaser:
        section = item.get("section")
        subsite = item.get("subsite")
        return Teaser(
            title=item.get("title", ""),
            href=article_href(item),
            summary=item.get("summary") or None,
            published=present.time_vn(item.get("published_at")),
            published_iso=present.iso(item.get("published_at")),
            section=Link(section["name"], self.section_href(section["code"])) if section else None,
            subsite=Link(subsite["name"], f"/chuyen-trang/{subsite['code']}") if subsite else None,
            picture=picture(item.get("lead_image"), alt=item.get("title", ""), sizes=sizes),
        )


# --- pagination -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PageLink:
    label: str
    href: str | None  # None: the current page, or a gap
    current: bool = False
    rel: str | None = None


def query_string(params: Mapping[str, Any]) -> str:
    clean: list[tuple[str, str]] = []
    for key, value in params.items():
        if value is None or value == "" or value == []:
            continue
        if isinstance(value, list | tuple):
            clean += [(key, str(v)) for v in value if v not in (None, "")]
        else:
            clean.append((key, str(value)))
    return ("?" + urlencode(clean)) if clean else ""


def page_links(
    path: str, params: Mapping[str, Any], *, page: int, total: int, size: int, window: int = 2
) -> list[PageLink]:
    """Numbered pages around the current one, the first and the last, with gaps ('…');
    empty when everything fits on one page."""
    pages = max(1, math.ceil(total / size)) if size > 0 else 1
    if pages <= 1:
        return []
    page = min(max(page, 1), pages)

    def href(n: int) -> str:
        return path + query_string({**params, "trang": n if n > 1 else None})

    shown = sorted({1, pages, *range(max(1, page - window), min(pages, page + window) + 1)})
    links: list[PageLink] = []
    if page > 1:
        links.append(PageLink("‹ Trang trước", href(page - 1), rel="prev"))
    previous = 0
    for n in shown:
        if n - previous > 1:
            links.append(PageLink("…", None))
        links.append(PageLink(str(n), None if n == page else href(n), current=n == page))
        previous = n
    if page < pages:
        links.append(PageLink("Trang sau ›", href(page + 1), rel="next"))
    return links


@dataclass(frozen=True)
class CursorPager:
    """Pagination that survives new items: the API's cursor names where the next page starts."""

    next_href: str | None
    first_href: str | None


def cursor_pager(
    path: str, params: Mapping[str, Any], *, next_cursor: str | None, on_first_page: bool
) -> CursorPager:
    return CursorPager(
        next_href=path + query_string({**params, "tiep": next_cursor}) if next_cursor else None,
        first_href=None if on_first_page else path + query_string(params),
    )


# --- the article page -------------------------------------------------------------------------


@dataclass(frozen=True)
class ArticleView:
    article_id: str
    title: str
    summary: str | None
    body: Markup
    author: str | None
    published: str
    published_iso: str
    updated: str | None
    updated_iso: str
    picture: Picture | None
    breadcrumb: list[Link]
    section: Link | None
    subsite: Link | None
    source_url: str | None
    canonical: str
    keys: list[str]
    json_ld: Markup
    og_image: str | None


def breadcrumb_for(site: Site, item: Mapping[str, Any]) -> list[Link]:
    crumbs = [Link("Trang chủ", "/")]
    section = item.get("section")
    subsite = item.get("subsite")
    info = site.sections.get(section["code"]) if section else None
    if subsite and (info is None or info.standard):
        crumbs.append(Link("Chuyên trang", "/chuyen-trang"))
        crumbs.append(Link(subsite["name"], f"/chuyen-trang/{subsite['code']}"))
        if section:
            crumbs.append(
                Link(section["name"], f"/chuyen-trang/{subsite['code']}?muc={section['code']}")
            )
    elif section:
        if info is not None:
            crumbs.append(Link(site.block_name(info.block), f"/#khoi-{info.block}"))
        crumbs.append(Link(section["name"], site.section_href(section["code"])))
    return crumbs


def json_ld(data: Any) -> Markup:
    """JSON for a <script type="application/ld+json"> block: '<', '>' and '&' escaped so no
    text can close the element."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)  # noqa: S704 - JSON with every markup character escaped


def article_view(
    site: Site, item: Mapping[str, Any], *, base_url: str, site_name: str
) -> ArticleView:
    href = article_href(item)
    canonical = base_url + href
    title = item.get("title", "")
    lead = picture(item.get("lead_image"), alt=title, sizes="(max-width: 800px) 100vw, 760px")
    og_image = base_url + lead.src if lead else None
    crumbs = breadcrumb_for(site, item)
    section = item.get("section")
    subsite = item.get("subsite")
    published, updated = item.get("published_at"), item.get("updated_at")
    news: dict[str, Any] = {
        "@type": "NewsArticle",
        "@id": canonical + "#article",
        "headline": title[:110],
        "url": canonical,
        "mainEntityOfPage": canonical,
        "inLanguage": "vi",
        "datePublished": present.iso(published),
        "dateModified": present.iso(updated or published),
        "publisher": {"@type": "Organization", "name": site_name, "url": base_url + "/"},
    }
    if item.get("summary"):
        news["description"] = item["summary"]
    if item.get("author"):
        news["author"] = {"@type": "Person", "name": item["author"]}
    else:
        news["author"] = {"@type": "Organization", "name": site_name}
    if section:
        news["articleSection"] = section["name"]
    if og_image:
        news["image"] = [og_image]
    trail = {
        "@type": "BreadcrumbList",
        "itemListElement": [
            {"@type": "ListItem", "position": i + 1, "name": c.label, "item": base_url + c.href}
            for i, c in enumerate(crumbs)
        ],
    }
    keys = [f"article:{item.get('article_id', '')}", "site"]
    changed = updated and present.parse_time(updated) != present.parse_time(published)
    return ArticleView(
        article_id=item.get("article_id", ""),
        title=title,
        summary=item.get("summary") or None,
        # Publishing serves canonical sanitised markup (normalize's nh3 allow-list); the page's
        # Content-Security-Policy forbids scripts and inline styles all the same.
        body=Markup(item.get("body_html", "")),  # noqa: S704
        author=item.get("author") or None,
        published=present.time_vn(published),
        published_iso=present.iso(published),
        updated=present.time_vn(updated) if changed else None,
        updated_iso=present.iso(updated),
        picture=lead,
        breadcrumb=crumbs,
        section=Link(section["name"], site.section_href(section["code"])) if section else None,
        subsite=Link(subsite["name"], f"/chuyen-trang/{subsite['code']}") if subsite else None,
        source_url=_http_url(item.get("canonical_url")),
        canonical=canonical,
        keys=keys,
        json_ld=json_ld({"@context": "https://schema.org", "@graph": [news, trail]}),
        og_image=og_image,
    )


def _http_url(value: Any) -> str | None:
    if isinstance(value, str) and value.startswith(("https://", "http://")):
        return value
    return None


# --- search ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Facet:
    label: str
    count: int
    href: str
    selected: bool


@dataclass(frozen=True)
class Hit:
    title: Markup
    href: str
    snippets: list[Markup]
    published: str
    published_iso: str
    section: str
    source: str


@dataclass
class SearchView:
    q: str
    sections: list[str]
    sources: list[str]
    date_from: str
    date_to: str
    sort: str
    page: int
    total: int
    hits: list[Hit] = field(default_factory=list)
    section_facets: list[Facet] = field(default_factory=list)
    source_facets: list[Facet] = field(default_factory=list)
    pages: list[PageLink] = field(default_factory=list)

    def params(self, **override: Any) -> dict[str, Any]:
        base: dict[str, Any] = {
            "q": self.q,
            "chuyen-muc": self.sections,
            "nguon": self.sources,
            "tu-ngay": self.date_from,
            "den-ngay": self.date_to,
            "sap-xep": self.sort if self.sort != "relevance" else None,
        }
        base.update(override)
        return base

    @property
    def filtered(self) -> bool:
        return bool(self.sections or self.sources or self.date_from or self.date_to)


SEARCH_PAGE_SIZE = 10


def _toggle(values: Sequence[str], value: str) -> list[str]:
    return [v for v in values if v != value] if value in values else [*values, value]


def search_view(site: Site, form: SearchView, answer: Mapping[str, Any] | None) -> SearchView:
    """Fills ``form`` (what the reader asked) with the search answer: hits, facets, pages."""
    if answer is None:
        return form
    form.total = int(answer.get("total", 0))
    for h in answer.get("hits", []):
        highlight = h.get("highlight") or {}
        titles = highlight.get("title") or []
        form.hits.append(
            Hit(
                title=safe_highlight(titles[0]) if titles else Markup.escape(h.get("title", "")),
                href=article_href(h),
                snippets=[safe_highlight(s) for s in (highlight.get("body") or [])[:2]]
                or ([Markup.escape(h["summary"])] if h.get("summary") else []),
                published=present.time_vn(h.get("published_at")),
                published_iso=present.iso(h.get("published_at")),
                section=site.section_name(h.get("section")),
                source=site.subsite_name(h.get("source")),
            )
        )
    facets = answer.get("facets") or {}
    form.section_facets = [
        Facet(
            site.section_name(b["key"]),
            int(b["count"]),
            "/tim-kiem"
            + query_string(form.params(**{"chuyen-muc": _toggle(form.sections, b["key"])})),
            b["key"] in form.sections,
        )
        for b in facets.get("section", [])
    ]
    form.source_facets = [
        Facet(
            site.subsite_name(b["key"]),
            int(b["count"]),
            "/tim-kiem" + query_string(form.params(nguon=_toggle(form.sources, b["key"]))),
            b["key"] in form.sources,
        )
        for b in facets.get("source", [])
    ]
    form.pages = page_links(
        "/tim-kiem", form.params(), page=form.page, total=form.total, size=SEARCH_PAGE_SIZE
    )
    return form


# --- engagement -------------------------------------------------------------------------------


@dataclass(frozen=True)
class QuestionView:
    id: str
    href: str
    title: str
    question: list[str]
    asker: str
    asked: str
    asked_iso: str
    topic: str
    agency: str
    answer: Markup | None
    answered_by: str
    answered: str
    answered_iso: str
    time_to_answer: str


def question_view(
    item: Mapping[str, Any], *, topics: Mapping[str, str], site: Site
) -> QuestionView:
    asked = present.parse_time(item.get("asked_at"))
    answered = present.parse_time(item.get("answered_at"))
    took = answered - asked if asked and answered and answered >= asked else None
    agency = item.get("agency")
    return QuestionView(
        id=item["id"],
        href=f"/hoi-dap/cau-hoi/{item['id']}",
        title=item.get("title") or _first_words(item.get("question", "")),
        question=plain_paragraphs(item.get("question", "")),
        asker=item.get("asker") or "Bạn đọc",
        asked=present.time_vn(asked),
        asked_iso=present.iso(asked),
        topic=topics.get(item.get("topic") or "", ""),
        agency=site.subsite_name(agency) if agency else "",
        answer=safe_answer(item.get("answer_html")),
        answered_by=item.get("answered_by") or (site.subsite_name(agency) if agency else ""),
        answered=present.time_vn(answered),
        answered_iso=present.iso(answered),
        time_to_answer=present.duration_vn(took) if took is not None else "",
    )


def _first_words(text: str, limit: int = 90) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: text.rfind(" ", 0, limit)] + "…"


@dataclass(frozen=True)
class AgencyTimes:
    name: str
    answered: int
    median: str
    p90: str
    waiting: int


def agency_times(rows: Iterable[Mapping[str, Any]], site: Site) -> list[AgencyTimes]:
    out = [
        AgencyTimes(
            name=site.subsite_name(r["agency"]),
            answered=int(r.get("answered", 0)),
            median=present.duration_vn(r.get("median_hours")),
            p90=present.duration_vn(r.get("p90_hours")),
            waiting=int(r.get("waiting", 0)),
        )
        for r in rows
    ]
    return sorted(out, key=lambda a: (-a.answered, a.name))


PHASE_LABELS = {
    "upcoming": "Sắp diễn ra",
    "live": "Đang diễn ra",
    "ended": "Đã kết thúc",
    "open": "Đang lấy ý kiến",
    "closed": "Đã hết hạn góp ý",
}


@dataclass(frozen=True)
class EntryView:
    """A dialogue question and (once given) its answer; the live stream sends the same."""

    question_id: str
    question: list[str]
    asker: str
    asked: str
    answer: Markup | None
    answered_by: str
    answered: str
    answered_iso: str


def entry_view(item: Mapping[str, Any]) -> EntryView:
    return EntryView(
        question_id=str(item.get("question_id", "")),
        question=plain_paragraphs(item.get("question", "")),
        asker=item.get("asker") or "Bạn đọc",
        asked=present.time_vn(item.get("asked_at")),
        answer=safe_answer(item.get("answer_html")),
        answered_by=item.get("answered_by") or "",
        answered=present.time_vn(item.get("answered_at")),
        answered_iso=present.iso(item.get("answered_at")),
    )


@dataclass(frozen=True)
class DialogueView:
    code: str
    href: str
    title: str
    topic: str
    description: list[str]
    guests: list[dict[str, str]]
    starts: str
    starts_iso: str
    ends: str
    phase: str
    phase_label: str
    accepts_questions: bool
    answered: int


def dialogue_view(item: Mapping[str, Any]) -> DialogueView:
    phase = item.get("phase", "upcoming")
    return DialogueView(
        code=item["code"],
        href=f"/doi-thoai/{item['code']}",
        title=item.get("title", ""),
        topic=item.get("topic", ""),
        description=plain_paragraphs(item.get("description", "")),
        guests=[
            {"name": g.get("name", ""), "position": g.get("position", "")}
            for g in item.get("guests", [])
        ],
        starts=present.time_vn(item.get("starts_at")),
        starts_iso=present.iso(item.get("starts_at")),
        ends=present.time_vn(item.get("ends_at")),
        phase=phase,
        phase_label=PHASE_LABELS.get(phase, phase),
        accepts_questions=bool(item.get("accepts_questions")),
        answered=int(item.get("answered", 0)),
    )


def dialogue_order(items: Iterable[DialogueView]) -> list[DialogueView]:
    """Live first, then upcoming (soonest first), then ended (latest first)."""
    rank = {"live": 0, "upcoming": 1, "ended": 2}
    listed = list(items)
    upcoming = sorted((d for d in listed if d.phase == "upcoming"), key=lambda d: d.starts_iso)
    ended = sorted(
        (d for d in listed if d.phase == "ended"), key=lambda d: d.starts_iso, reverse=True
    )
    live = [d for d in listed if d.phase == "live"]
    others = [d for d in listed if d.phase not in rank]
    return [*live, *upcoming, *ended, *others]


@dataclass(frozen=True)
class DocumentView:
    code: str
    href: str
    title: str
    summary: list[str]
    requested_by: str
    opens: str
    deadline: str
    deadline_iso: str
    phase: str
    phase_label: str
    sections: list[dict[str, Any]]
    feedback_total: int
    feedback_on_whole: int


def document_view(item: Mapping[str, Any]) -> DocumentView:
    phase = item.get("phase", "open")
    return DocumentView(
        code=item["code"],
        href=f"/gop-y/{item['code']}",
        title=item.get("title", ""),
        summary=plain_paragraphs(item.get("summary", "")),
        requested_by=item.get("requested_by", ""),
        opens=present.time_vn(item.get("opens_at")),
        deadline=present.time_vn(item.get("deadline")),
        deadline_iso=present.iso(item.get("deadline")),
        phase=phase,
        phase_label=PHASE_LABELS.get(phase, phase),
        sections=[
            {
                "code": s["code"],
                "title": s.get("title", ""),
                "text": plain_paragraphs(s.get("text", "")),
                "feedback": int(s.get("feedback", 0)),
            }
            for s in item.get("sections", [])
        ],
        feedback_total=int(item.get("feedback_total", 0)),
        feedback_on_whole=int(item.get("feedback_on_whole", 0)),
    )


@dataclass(frozen=True)
class PostView:
    id: str
    title: str | None
    body: list[str]
    author: str
    published: str
    published_iso: str
    replies: int
    href: str
    last_activity: str


def post_view(item: Mapping[str, Any], *, thread_href: str | None = None) -> PostView:
    return PostView(
        id=item["id"],
        title=item.get("title") or None,
        body=plain_paragraphs(item.get("body", "")),
        author=item.get("author") or "Bạn đọc",
        published=present.time_vn(item.get("published_at")),
        published_iso=present.iso(item.get("published_at")),
        replies=int(item.get("replies", 0)),
        href=thread_href or f"/dien-dan/bai/{item['id']}",
        last_activity=present.time_vn(item.get("last_activity_at") or item.get("published_at")),
    )


# --- the private status link ----------------------------------------------------------------

KIND_LABELS = {
    "qa": "Câu hỏi (Hỏi đáp trực tuyến)",
    "dialogue": "Câu hỏi gửi buổi đối thoại",
    "feedback": "Góp ý xây dựng Đảng",
    "forum_thread": "Chủ đề trên Diễn đàn",
    "forum_reply": "Trả lời trên Diễn đàn",
    "comment": "Bình luận",
}


def public_href(api_path: str | None) -> str | None:
    """Where the public sees a submission on the website (from the API's public path)."""
    if not api_path:
        return None
    parts = api_path.strip("/").split("/")
    if parts[:3] == ["v1", "qa", "questions"] and len(parts) == 4:
        return f"/hoi-dap/cau-hoi/{parts[3]}"
    if parts[:2] == ["v1", "dialogues"] and len(parts) >= 3:
        return f"/doi-thoai/{parts[2]}"
    if parts[:3] == ["v1", "forum", "threads"] and len(parts) == 4:
        return f"/dien-dan/bai/{parts[3]}"
    return None


@dataclass(frozen=True)
class StepView:
    label: str
    at: str
    at_iso: str
    note: str | None


@dataclass(frozen=True)
class StatusView:
    reference: str
    kind: str
    kind_label: str
    state: str
    label: str
    held: bool
    submitted: str
    title: str | None
    body: list[str]
    steps: list[StepView]
    reason: str | None
    answer: Markup | None
    answered_by: str
    public_href: str | None


def status_view(item: Mapping[str, Any]) -> StatusView:
    answer = item.get("answer") or {}
    return StatusView(
        reference=item.get("reference", ""),
        kind=item.get("kind", ""),
        kind_label=KIND_LABELS.get(item.get("kind", ""), item.get("kind", "")),
        state=item.get("state", ""),
        label=item.get("label", ""),
        held=bool(item.get("held_for_review")),
        submitted=present.time_vn(item.get("submitted_at")),
        title=item.get("title") or None,
        body=plain_paragraphs(item.get("body", "")),
        steps=[
            StepView(
                s.get("label", s.get("state", "")),
                present.time_vn(s.get("at")),
                present.iso(s.get("at")),
                s.get("note") or None,
            )
            for s in item.get("steps", [])
        ],
        reason=item.get("reason") or None,
        answer=safe_answer(answer.get("answer_html")),
        answered_by=answer.get("answered_by") or "",
        public_href=public_href(item.get("public_path")),
    )


# --- the home page ----------------------------------------------------------------------------


@dataclass(frozen=True)
class BlockView:
    code: str
    name: str
    sections: list[Link]
    teasers: list[Teaser]


@dataclass(frozen=True)
class LeaderView:
    name: str
    href: str
    teasers: list[Teaser]


@dataclass
class EngagementBlock:
    """The engagement block of the home page; None where engagement did not answer."""

    questions: list[QuestionView] | None = None
    dialogues: list[DialogueView] | None = None
    documents: list[DocumentView] | None = None
    threads: list[PostView] | None = None


@dataclass
class HomeView:
    lead: Teaser | None
    headlines: list[Teaser]
    blocks: list[BlockView]
    leaders: list[LeaderView]
    subsites: BlockView | None
    engagement: EngagementBlock
    keys: list[str]


HEADLINES = 4


def _is_subsite_block(block: Mapping[str, Any]) -> bool:
    sections = block.get("sections") or []
    return bool(sections) and all(s.get("kind") == SUBSITE_KIND for s in sections)


def _is_engagement_block(block: Mapping[str, Any]) -> bool:
    sections = block.get("sections") or []
    return bool(sections) and all(s.get("kind") == ENGAGEMENT_KIND for s in sections)


def home_view(site: Site, home: Mapping[str, Any], engagement: EngagementBlock) -> HomeView:
    blocks: list[BlockView] = []
    subsites: BlockView | None = None
    lead: Teaser | None = None
    headlines: list[Teaser] = []
    for block in home.get("blocks", []):
        if _is_engagement_block(block):
            continue
        teasers = [site.teaser(a) for a in block.get("articles", [])]
        view = BlockView(
            code=block["code"],
            name=block["name"],
            sections=[
                Link(s["name"], site.section_href(s["code"]))
                for s in block.get("sections", [])
                if s.get("kind") != LEADER_KIND
            ],
            teasers=teasers,
        )
        if _is_subsite_block(block):
            subsites = view
            continue
        if lead is None and teasers:
            # The portal's lead story: the newest of the first block, with a picture if any.
            lead = next((t for t in teasers if t.picture), teasers[0])
            view = BlockView(
                view.code, view.name, view.sections, [t for t in teasers if t is not lead]
            )
        blocks.append(view)
    leaders = [
        LeaderView(
            name=page["section"]["name"],
            href=site.section_href(page["section"]["code"]),
            teasers=[site.teaser(a) for a in page.get("articles", [])[:3]],
        )
        for page in home.get("leaders", [])
    ]
    keys = ["home", "site", "qa", "forum"]
    keys += [f"dialogue:{d.code}" for d in engagement.dialogues or []]
    keys += [f"feedback:{d.code}" for d in engagement.documents or []]
    return HomeView(lead, headlines, blocks, leaders, subsites, engagement, keys)
