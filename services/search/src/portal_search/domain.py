"""The search read model's own logic, free of I/O.

* What an ``article.published`` event becomes in the index (a document, or a tombstone for a
  retraction, both written with the revision as external version).
* The public search request: validation, the OpenSearch query, and the reading of its answer
  (hits with safe highlighted snippets, facets).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any, Literal

from portal_contracts.articles import ArticlePublished, PublishedState
from portal_text import normalize_tone_placement

# Readers are in Vietnam: a date or a time without a zone is local time (UTC+7, no DST).
VIETNAM = timezone(timedelta(hours=7), "Asia/Ho_Chi_Minh")

MAX_QUERY_CHARS = 200
MAX_PAGE_SIZE = 50
DEFAULT_PAGE_SIZE = 10
MAX_FILTER_VALUES = 20
# OpenSearch's index.max_result_window: deeper pages are refused, not silently empty.
MAX_RESULT_WINDOW = 10_000
FACET_SIZE = 50
CODE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")

# Highlight markers: private-use characters that never survive into indexed text, so after
# escaping the fragment they are the only thing turned into markup.
MARK_START = "\ue000"
MARK_END = "\ue001"
_STRIP_MARKERS = {ord(MARK_START): None, ord(MARK_END): None}
_SPACES = re.compile(r"\s+")

Sort = Literal["relevance", "date"]

PUBLISHED = "published"
RETRACTED = "retracted"

# Fields the search answer needs from _source (never the body).
SOURCE_FIELDS = [
    "article_id",
    "title",
    "summary",
    "url_path",
    "slug",
    "section",
    "source",
    "published_at",
    "updated_at",
    "lead_image_url",
]


# --------------------------------------------------------------------------- text


def clean_text(text: str | None) -> str:
    """Text as indexed and queried: NFC, one tone-mark placement, no highlight markers."""
    if not text:
        return ""
    text = normalize_tone_placement(text)
    if MARK_START in text or MARK_END in text:
        # Rare, and ``translate`` reads a whole article's text a character at a time.
        text = text.translate(_STRIP_MARKERS)
    return text


def normalize_query(q: str) -> str:
    """The query as the index sees text: same normalisation, single spaces."""
    return _SPACES.sub(" ", clean_text(q)).strip()


def render_snippet(fragment: str) -> str:
    """A highlighted fragment as safe HTML: everything escaped, matches in ``<mark>``."""
    escaped = html.escape(fragment, quote=True)
    return escaped.replace(MARK_START, "<mark>").replace(MARK_END, "</mark>")


# --------------------------------------------------------------------------- documents


class InvalidEvent(ValueError):
    """An event that can never be indexed (a domain refusal, not a transient failure)."""


@dataclass(frozen=True)
class IndexOp:
    """One write to the index: the document for ``article_id`` at external version ``version``."""

    article_id: str
    version: int
    body: dict[str, Any]

    @property
    def retracted(self) -> bool:
        return bool(self.body.get("state") == RETRACTED)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def document_for(data: ArticlePublished, *, max_body_chars: int = 500_000) -> IndexOp:
    """The index write an ``article.published`` payload asks for.

    A retraction becomes a tombstone document (state "retracted") instead of a delete: it keeps
    the revision in the index for good, so a late older revision can never bring the article back
    (a real delete's version is forgotten after ``index.gc_deletes``), and a later re-publish with
    a higher revision simply replaces it. Searches only ever match state "published".
    """
    if not data.article_id:
        raise InvalidEvent("article_id is empty")
    common: dict[str, Any] = {
        "article_id": data.article_id,
        "revision": data.revision,
        "source": data.source,
        "slug": data.slug,
        "url_path": data.url_path,
        "published_at": _iso(data.published_at),
        "updated_at": _iso(data.updated_at),
    }
    if data.state is PublishedState.RETRACTED:
        return IndexOp(data.article_id, data.revision, {**common, "state": RETRACTED})
    article = data.article
    if article is None:
        raise InvalidEvent("state is 'published' but the event carries no article")
    title = clean_text(article.title)
    if not title:
        raise InvalidEvent("a published article has an empty title")
    lead = article.lead_image
    body: dict[str, Any] = {
        **common,
        "state": PUBLISHED,
        "title": title,
        "summary": clean_text(article.summary),
        "body_text": clean_text(article.body_text[:max_body_chars]),
        "section": article.section,
        "lead_image_url": lead.original_url if lead is not None else None,
    }
    return IndexOp(data.article_id, data.revision, body)


# --------------------------------------------------------------------------- search request


@dataclass(frozen=True)
class Problem:
    """One reason a request is refused, in FastAPI's 422 shape."""

    field: str
    message: str

    def as_detail(self) -> dict[str, Any]:
        return {"loc": ["query", self.field], "msg": self.message, "type": "value_error"}


class SearchValidationError(ValueError):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class DateBound:
    at: datetime
    op: Literal["gte", "lt", "lte"]


@dataclass(frozen=True)
class SearchQuery:
    q: str = ""
    sections: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    published_from: DateBound | None = None
    published_to: DateBound | None = None
    sort: Sort = "relevance"
    page: int = 1
    size: int = DEFAULT_PAGE_SIZE

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size


def _parse_bound(name: str, raw: str, *, end: bool, problems: list[Problem]) -> DateBound | None:
    value = raw.strip()
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            start = datetime.combine(day, time.min, tzinfo=VIETNAM)
            # A bare date as the upper bound means the whole of that day (local time).
            if end:
                return DateBound(start + timedelta(days=1), "lt")
            return DateBound(start, "gte")
        moment = datetime.fromisoformat(value)
    except ValueError:
        problems.append(
            Problem(name, "must be an ISO 8601 date (2024-03-28) or date-time (2024-03-28T08:00)")
        )
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=VIETNAM)
    return DateBound(moment, "lte" if end else "gte")


def _codes(name: str, values: list[str], problems: list[Problem]) -> tuple[str, ...]:
    cleaned = [v.strip() for v in values if v.strip()]
    if len(cleaned) > MAX_FILTER_VALUES:
        problems.append(Problem(name, f"at most {MAX_FILTER_VALUES} values"))
        return ()
    bad = [v for v in cleaned if not CODE_PATTERN.match(v)]
    if bad:
        problems.append(
            Problem(name, f"{bad[0][:70]!r} is not a code (lower-case letters, digits, hyphens)")
        )
        return ()
    return tuple(dict.fromkeys(cleaned))


def parse_search(
    *,
    q: str | None = None,
    sections: list[str] | None = None,
    sources: list[str] | None = None,
    date_from: str | None = None,
    date_to: str | None = None,
    sort: str = "relevance",
    page: int = 1,
    size: int = DEFAULT_PAGE_SIZE,
) -> SearchQuery:
    """Validate a search request; every problem is reported with the field it concerns."""
    problems: list[Problem] = []
    raw_q = q or ""
    if len(raw_q) > MAX_QUERY_CHARS:
        problems.append(Problem("q", f"at most {MAX_QUERY_CHARS} characters"))
    text = normalize_query(raw_q[:MAX_QUERY_CHARS])
    if sort not in ("relevance", "date"):
        problems.append(Problem("sort", "must be 'relevance' or 'date'"))
    if page < 1:
        problems.append(Problem("page", "must be 1 or more"))
    if not 1 <= size <= MAX_PAGE_SIZE:
        problems.append(Problem("size", f"must be between 1 and {MAX_PAGE_SIZE}"))
    elif page >= 1 and page * size > MAX_RESULT_WINDOW:
        problems.append(
            Problem("page", f"page * size must not exceed {MAX_RESULT_WINDOW}; narrow the search")
        )
    section_codes = _codes("section", sections or [], problems)
    source_codes = _codes("source", sources or [], problems)
    lower = _parse_bound("from", date_from, end=False, problems=problems) if date_from else None
    upper = _parse_bound("to", date_to, end=True, problems=problems) if date_to else None
    if lower is not None and upper is not None and lower.at > upper.at:
        problems.append(Problem("to", "must not be before 'from'"))
    if problems:
        raise SearchValidationError(problems)
    return SearchQuery(
        q=text,
        sections=section_codes,
        sources=source_codes,
        published_from=lower,
        published_to=upper,
        sort=sort,  # type: ignore[arg-type]
        page=page,
        size=size,
    )


# --------------------------------------------------------------------------- query building

# Exact (diacritics kept) clauses weigh more than folded ones: "Đảng" outranks "đang"/"dang"
# for a reader who typed the marks, while a reader who typed none still finds both.
EXACT_BOOST = 3.0
PHRASE_BOOST = 2.0
TEXT_FIELDS = ("title^3", "summary^2", "body_text")
# Short queries need every word; longer ones tolerate a missing word or two.
MINIMUM_SHOULD_MATCH = "3<75%"


def text_clauses(q: str, fields: tuple[str, ...]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The match on ``fields`` (boosts as ``name^n``, the first one the title): every word
    folded, each form of it matching (``must``), and the exact words and the title's phrase
    weighing more (``should``)."""
    folded: dict[str, Any] = {
        "multi_match": {
            "query": q,
            "type": "cross_fields",
            "fields": list(fields),
            # Folded words match every form of the word, with or without marks.
            "analyzer": "vi_folded",
            "operator": "or",
            "minimum_should_match": MINIMUM_SHOULD_MATCH,
        }
    }
    title = fields[0].split("^")[0]
    boosts: list[dict[str, Any]] = [
        {
            "multi_match": {
                "query": q,
                "type": "best_fields",
                "fields": list(fields),
                "boost": EXACT_BOOST,
            }
        },
        {"match_phrase": {title: {"query": q, "slop": 2, "boost": PHRASE_BOOST}}},
    ]
    return folded, boosts


def _terms(field_name: str, values: tuple[str, ...]) -> dict[str, Any] | None:
    return {"terms": {field_name: list(values)}} if values else None


def _filtered(*clauses: dict[str, Any] | None) -> dict[str, Any]:
    present = [c for c in clauses if c is not None]
    if not present:
        return {"match_all": {}}
    return {"bool": {"filter": present}}


def build_search_body(query: SearchQuery) -> dict[str, Any]:
    """The OpenSearch request for a validated search.

    Facets are computed the usual way for faceted navigation: the section and source filters
    are applied as ``post_filter`` (to the hits), and each facet's counts are narrowed by the
    other facet's filter only, so choosing a section still shows every section's count.
    """
    filters: list[dict[str, Any]] = [{"term": {"state": PUBLISHED}}]
    date_range: dict[str, str] = {}
    for bound in (query.published_from, query.published_to):
        if bound is not None:
            date_range[bound.op] = _iso(bound.at)
    if date_range:
        filters.append({"range": {"published_at": date_range}})

    bool_query: dict[str, Any] = {"filter": filters}
    if query.q:
        folded, boosts = text_clauses(query.q, TEXT_FIELDS)
        bool_query["must"] = [folded]
        bool_query["should"] = boosts

    section_filter = _terms("section", query.sections)
    source_filter = _terms("source", query.sources)
    body: dict[str, Any] = {
        "query": {"bool": bool_query},
        "from": query.offset,
        "size": query.size,
        "track_total_hits": True,
        "track_scores": True,
        "_source": SOURCE_FIELDS,
        "sort": _sort(query),
        "aggs": {
            "section": {
                "filter": _filtered(source_filter),
                "aggs": {"keys": {"terms": {"field": "section", "size": FACET_SIZE}}},
            },
            "source": {
                "filter": _filtered(section_filter),
                "aggs": {"keys": {"terms": {"field": "source", "size": FACET_SIZE}}},
            },
        },
    }
    if section_filter or source_filter:
        body["post_filter"] = _filtered(section_filter, source_filter)
    if query.q:
        body["highlight"] = _highlight()
    return body


MAX_RELATED = 12
RELATED_FIELDS = ("title", "summary", "body_text")


def build_related_body(article_id: str, *, index: str, size: int) -> dict[str, Any]:
    """Published articles about the same things as ``article_id`` (OpenSearch more_like_this on
    its indexed text), best first; the article itself and retracted ones never."""
    return {
        "size": size,
        "_source": SOURCE_FIELDS,
        "query": {
            "bool": {
                "must": [
                    {
                        "more_like_this": {
                            "fields": list(RELATED_FIELDS),
                            "like": [{"_index": index, "_id": article_id}],
                            # A small portal still finds neighbours: rare terms weigh most.
                            "min_term_freq": 1,
                            "min_doc_freq": 1,
                            "max_query_terms": 30,
                            "minimum_should_match": "10%",
                        }
                    }
                ],
                "filter": [{"term": {"state": PUBLISHED}}],
                "must_not": [{"ids": {"values": [article_id]}}],
            }
        },
    }


def _sort(query: SearchQuery) -> list[Any]:
    # article_id last: a stable order, so pages never repeat or skip a hit.
    if query.sort == "relevance" and query.q:
        return ["_score", {"published_at": "desc"}, {"article_id": "asc"}]
    return [{"published_at": "desc"}, {"article_id": "asc"}]


def _highlight() -> dict[str, Any]:
    whole = {"number_of_fragments": 0}
    snippets = {"fragment_size": 180, "number_of_fragments": 3}
    return {
        "type": "unified",
        "pre_tags": [MARK_START],
        "post_tags": [MARK_END],
        # Both clauses query the same fields: every form of a word found is marked.
        "fields": {"title": whole, "body_text": snippets, "summary": snippets},
    }


# --------------------------------------------------------------------------- search answer


@dataclass(frozen=True)
class Highlight:
    title: list[str] = field(default_factory=list)
    body: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Hit:
    article_id: str
    title: str
    summary: str
    url_path: str
    slug: str
    section: str | None
    source: str
    published_at: str
    updated_at: str | None
    lead_image_url: str | None
    score: float | None
    highlight: Highlight


@dataclass(frozen=True)
class FacetBucket:
    key: str
    count: int


@dataclass(frozen=True)
class SearchPage:
    total: int
    page: int
    size: int
    hits: list[Hit]
    facets: dict[str, list[FacetBucket]]


def pick_fragments(highlight: dict[str, list[str]], fields: tuple[str, ...]) -> list[str]:
    """Fragments of the first of ``fields`` (in order of preference) that has any, rendered
    safe."""
    for name in fields:
        fragments = highlight.get(name)
        if fragments:
            return [render_snippet(f) for f in fragments]
    return []


def parse_response(raw: dict[str, Any], query: SearchQuery) -> SearchPage:
    hits: list[Hit] = []
    for item in raw.get("hits", {}).get("hits", []):
        src = item.get("_source", {})
        hl = item.get("highlight", {})
        hits.append(
            Hit(
                article_id=src["article_id"],
                title=src.get("title", ""),
                summary=src.get("summary", ""),
                url_path=src.get("url_path", ""),
                slug=src.get("slug", ""),
                section=src.get("section"),
                source=src.get("source", ""),
                published_at=src.get("published_at", ""),
                updated_at=src.get("updated_at"),
                lead_image_url=src.get("lead_image_url"),
                score=item.get("_score"),
                highlight=Highlight(
                    title=pick_fragments(hl, ("title",)),
                    body=pick_fragments(hl, ("body_text", "summary")),
                ),
            )
        )
    total = raw.get("hits", {}).get("total", {})
    aggs = raw.get("aggregations", {})
    facets = {
        name: [
            FacetBucket(key=str(b["key"]), count=int(b["doc_count"]))
            for b in aggs.get(name, {}).get("keys", {}).get("buckets", [])
        ]
        for name in ("section", "source")
    }
    return SearchPage(
        total=int(total.get("value", 0)) if isinstance(total, dict) else int(total),
        page=query.page,
        size=query.size,
        hits=hits,
        facets=facets,
    )
