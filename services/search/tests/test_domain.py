"""Pure logic of the search read model: documents, validation, the query, the answer."""

from __future__ import annotations

import json
import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Any

import opensearchpy
import pytest

from portal_contracts.articles import (
    ArticlePublished,
    MediaRef,
    NormalizedArticle,
    PublishedState,
)
from portal_runtime.kafka import is_transient
from portal_search.domain import (
    MARK_END,
    MARK_START,
    MAX_PAGE_SIZE,
    VIETNAM,
    InvalidEvent,
    SearchQuery,
    SearchValidationError,
    build_related_body,
    build_search_body,
    clean_text,
    document_for,
    normalize_query,
    parse_response,
    parse_search,
    pick_fragments,
    render_snippet,
)
from portal_search.index import SearchUnavailable
from portal_search.layout import (
    FAST_FOLDING,
    STOCK_FOLDING,
    analysis_settings,
    index_definition,
)
from portal_search.questions import questions_definition

NOW = datetime(2024, 3, 28, 1, 0, tzinfo=UTC)


def _published(
    *,
    state: PublishedState = PublishedState.PUBLISHED,
    revision: int = 2,
    title: str = "Hội nghị hoà bình",
    body: str = "Thuỷ lợi và hoà giải.",
    with_article: bool = True,
) -> ArticlePublished:
    article = (
        NormalizedArticle(
            title=title,
            summary="Tóm tắt hoà",
            body_html=f"<p>{body}</p>",
            body_text=body,
            section="tin-hoat-dong",
            lead_image=MediaRef(original_url="https://example.org/a.jpg", object_key="m/a.jpg"),
        )
        if with_article
        else None
    )
    return ArticlePublished(
        article_id="a-1",
        source="bao-nhan-dan",
        revision=revision,
        state=state,
        slug="hoi-nghi-hoa-binh",
        url_path="/bai-viet/hoi-nghi-hoa-binh",
        published_at=NOW,
        updated_at=NOW + timedelta(hours=1),
        article=article,
    )


# ------------------------------------------------------------------ text


def test_both_tone_placements_and_nfd_become_one_form() -> None:
    assert clean_text("hoà bình") == clean_text("hòa bình") == "hòa bình"
    assert clean_text("thuỷ") == clean_text("thủy")
    assert clean_text(unicodedata.normalize("NFD", "Đảng Cộng sản")) == "Đảng Cộng sản"
    # The query goes through the same normalisation as the indexed text.
    assert normalize_query("  hoà   bình\t") == clean_text("hòa bình")


def test_highlight_markers_cannot_be_smuggled_in_through_text() -> None:
    assert clean_text(f"a{MARK_START}b{MARK_END}c") == "abc"


# ------------------------------------------------------------------ snippets


def test_snippet_escapes_everything_but_the_marks() -> None:
    fragment = f"<script>alert('x')</script> & {MARK_START}Đảng{MARK_END} \"q\""
    html = render_snippet(fragment)
    assert html == (
        "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; <mark>Đảng</mark> &quot;q&quot;"
    )
    assert "<script" not in html


def test_fragments_come_from_the_first_field_that_has_any() -> None:
    hl = {"title": [f"{MARK_START}Đảng{MARK_END} {MARK_START}họp{MARK_END}"]}
    assert pick_fragments(hl, ("title",)) == ["<mark>Đảng</mark> <mark>họp</mark>"]
    # Body falls back to the summary, and to nothing.
    summary = {"summary": [f"x {MARK_START}y{MARK_END}"]}
    assert pick_fragments(summary, ("body_text", "summary")) == ["x <mark>y</mark>"]
    assert pick_fragments({}, ("body_text", "summary")) == []


# ------------------------------------------------------------------ documents


def test_published_event_becomes_a_normalised_document_at_its_revision() -> None:
    op = document_for(_published(revision=7))
    assert op.article_id == "a-1"
    assert op.version == 7
    assert not op.retracted
    body = op.body
    assert body["state"] == "published"
    assert body["title"] == "Hội nghị hòa bình"  # tone placement normalised
    assert body["body_text"] == "Thủy lợi và hòa giải."
    assert body["summary"] == "Tóm tắt hòa"
    assert body["section"] == "tin-hoat-dong"
    assert body["source"] == "bao-nhan-dan"
    assert body["url_path"] == "/bai-viet/hoi-nghi-hoa-binh"
    assert body["published_at"] == "2024-03-28T01:00:00+00:00"
    assert body["lead_image_url"] == "https://example.org/a.jpg"
    # Every field the document carries is in the strict mapping.
    mapped = index_definition(shards=1, replicas=0)["mappings"]["properties"]
    assert set(body) <= set(mapped)


def test_retraction_becomes_a_tombstone_at_its_revision() -> None:
    op = document_for(_published(state=PublishedState.RETRACTED, revision=3, with_article=False))
    assert op.retracted
    assert op.version == 3
    assert op.body["state"] == "retracted"
    assert "title" not in op.body


def test_published_without_article_is_refused() -> None:
    with pytest.raises(InvalidEvent, match="no article"):
        document_for(_published(with_article=False))


def test_long_body_is_cut() -> None:
    op = document_for(_published(body="x" * 5000), max_body_chars=1000)
    assert len(op.body["body_text"]) == 1000


# ------------------------------------------------------------------ validation


def _problems(**kwargs: Any) -> dict[str, str]:
    with pytest.raises(SearchValidationError) as info:
        parse_search(**kwargs)
    return {p.field: p.message for p in info.value.problems}


def test_validation_names_each_bad_field() -> None:
    problems = _problems(
        q="x" * 201, size=MAX_PAGE_SIZE + 1, sort="popular", date_from="28/03/2024"
    )
    assert set(problems) == {"q", "size", "sort", "from"}
    assert "ISO 8601" in problems["from"]


def test_deep_pages_and_reversed_ranges_are_refused() -> None:
    assert "page" in _problems(page=1001, size=10)
    assert "to" in _problems(date_from="2024-03-28", date_to="2024-03-01")
    assert "section" in _problems(sections=["Tin Hoạt Động"])
    assert "source" in _problems(sources=[f"s{i}" for i in range(21)])


def test_dates_without_zone_are_vietnam_time_and_bare_to_includes_the_day() -> None:
    query = parse_search(date_from="2024-03-28", date_to="2024-03-28")
    assert query.published_from is not None and query.published_to is not None
    assert query.published_from.at == datetime(2024, 3, 28, tzinfo=VIETNAM)
    assert query.published_from.op == "gte"
    assert query.published_to.at == datetime(2024, 3, 29, tzinfo=VIETNAM)
    assert query.published_to.op == "lt"
    moment = parse_search(date_to="2024-03-28T08:30").published_to
    assert moment is not None and moment.op == "lte"
    assert moment.at.astimezone(UTC) == datetime(2024, 3, 28, 1, 30, tzinfo=UTC)
    explicit = parse_search(date_from="2024-03-28T08:30:00Z").published_from
    assert explicit is not None and explicit.at == datetime(2024, 3, 28, 8, 30, tzinfo=UTC)


def test_valid_request_is_normalised() -> None:
    query = parse_search(
        q=" hoà  bình ", sections=["tin-hoat-dong", "tin-hoat-dong"], page=3, size=20
    )
    assert query.q == "hòa bình"
    assert query.sections == ("tin-hoat-dong",)
    assert query.offset == 40


# ------------------------------------------------------------------ query


def test_query_matches_folded_and_boosts_exact_diacritics() -> None:
    body = build_search_body(parse_search(q="Đảng hoà"))
    bool_q = body["query"]["bool"]
    assert {"term": {"state": "published"}} in bool_q["filter"]
    (folded,) = bool_q["must"]
    assert folded["multi_match"]["query"] == "Đảng hòa"
    assert folded["multi_match"]["analyzer"] == "vi_folded"
    exact = bool_q["should"][0]["multi_match"]
    # The exact clause searches the same fields with their own (diacritics-keeping) analyser.
    assert exact["fields"] == folded["multi_match"]["fields"]
    assert "analyzer" not in exact
    assert exact["boost"] > folded["multi_match"].get("boost", 1.0)
    assert body["sort"][0] == "_score"
    assert body["highlight"]["pre_tags"] == [MARK_START]
    assert set(body["highlight"]["fields"]) == {"title", "summary", "body_text"}


def test_facet_filters_apply_to_hits_and_to_the_other_facet_only() -> None:
    body = build_search_body(
        parse_search(q="x", sections=["tin-hoat-dong"], sources=["bo-y-te"], date_from="2024-01-01")
    )
    # The date range narrows everything; section/source narrow the hits via post_filter.
    assert {"range": {"published_at": {"gte": "2023-12-31T17:00:00+00:00"}}} in body["query"][
        "bool"
    ]["filter"]
    post = body["post_filter"]["bool"]["filter"]
    assert {"terms": {"section": ["tin-hoat-dong"]}} in post
    assert {"terms": {"source": ["bo-y-te"]}} in post
    assert body["aggs"]["section"]["filter"] == {
        "bool": {"filter": [{"terms": {"source": ["bo-y-te"]}}]}
    }
    assert body["aggs"]["source"]["filter"] == {
        "bool": {"filter": [{"terms": {"section": ["tin-hoat-dong"]}}]}
    }


def test_no_query_lists_newest_and_date_sort_and_paging() -> None:
    body = build_search_body(SearchQuery(page=2, size=5))
    assert "must" not in body["query"]["bool"]
    assert "highlight" not in body
    assert "post_filter" not in body
    assert body["sort"][0] == {"published_at": "desc"}
    assert (body["from"], body["size"]) == (5, 5)
    dated = build_search_body(parse_search(q="x", sort="date"))
    assert dated["sort"][0] == {"published_at": "desc"}
    assert dated["track_scores"] is True


def test_response_is_read_into_hits_facets_and_safe_highlights() -> None:
    raw = {
        "hits": {
            "total": {"value": 12, "relation": "eq"},
            "hits": [
                {
                    "_score": 4.5,
                    "_source": {
                        "article_id": "a-1",
                        "title": "<b>Đảng</b>",
                        "summary": "s",
                        "url_path": "/bai-viet/x",
                        "slug": "x",
                        "section": "tin-hoat-dong",
                        "source": "bo-y-te",
                        "published_at": "2024-03-28T01:00:00+00:00",
                    },
                    "highlight": {
                        "title": [f"<b>{MARK_START}Đảng{MARK_END}</b>"],
                        "body_text": [f"a {MARK_START}dang{MARK_END} & b"],
                    },
                }
            ],
        },
        "aggregations": {
            "section": {"keys": {"buckets": [{"key": "tin-hoat-dong", "doc_count": 12}]}},
            "source": {"keys": {"buckets": [{"key": "bo-y-te", "doc_count": 7}]}},
        },
    }
    page = parse_response(raw, parse_search(q="dang", page=2, size=5))
    assert (page.total, page.page, page.size) == (12, 2, 5)
    (hit,) = page.hits
    assert hit.score == 4.5
    assert hit.title == "<b>Đảng</b>"  # plain text, the client escapes it
    assert hit.highlight.title == ["&lt;b&gt;<mark>Đảng</mark>&lt;/b&gt;"]
    assert hit.highlight.body == ["a <mark>dang</mark> &amp; b"]
    assert [(b.key, b.count) for b in page.facets["section"]] == [("tin-hoat-dong", 12)]
    assert [(b.key, b.count) for b in page.facets["source"]] == [("bo-y-te", 7)]


@pytest.mark.parametrize("folding", [STOCK_FOLDING, FAST_FOLDING])
def test_analysers_keep_and_fold_diacritics(folding: str) -> None:
    definition = index_definition(shards=1, replicas=0, folding=folding)
    analysis = definition["settings"]["analysis"]
    analysers = analysis["analyzer"]
    assert analysers["vi_exact"]["filter"] == ["lowercase"]
    assert analysers["vi_folded"]["filter"] == ["lowercase", folding]
    # Indexed once: the written word and, at the same position, its folded form.
    (fold,) = [f for f in analysers["vi_indexed"]["filter"] if f != "lowercase"]
    assert analysis["filter"][fold] == {"type": folding, "preserve_original": True}
    body = definition["mappings"]["properties"]["body_text"]
    assert (body["analyzer"], body["search_analyzer"]) == ("vi_indexed", "vi_exact")
    assert "fields" not in body  # no second analysis of the same text


def test_the_folding_filter_is_the_only_difference_and_stock_is_the_default() -> None:
    stock = index_definition(shards=1, replicas=0)
    assert stock == index_definition(shards=1, replicas=0, folding=STOCK_FOLDING)
    fast = index_definition(shards=1, replicas=0, folding=FAST_FOLDING)
    assert json.dumps(fast).replace(FAST_FOLDING, STOCK_FOLDING) == json.dumps(stock)
    assert analysis_settings() == analysis_settings(STOCK_FOLDING)
    questions = questions_definition(shards=1, replicas=0, folding=FAST_FOLDING)
    assert questions["settings"] == fast["settings"]


def test_opensearch_outages_are_retried_not_dead_lettered() -> None:
    assert is_transient(SearchUnavailable("429"))
    assert is_transient(opensearchpy.exceptions.ConnectionError("N/A", "refused", None))
    assert is_transient(opensearchpy.exceptions.ConnectionTimeout("TIMEOUT", "slow", None))
    assert not is_transient(opensearchpy.exceptions.RequestError(400, "mapper_parsing", {}))


async def test_a_write_while_opensearch_is_down_is_retried_by_the_runtime() -> None:
    """A real client against a closed loopback port: the failure must be classed transient."""
    from opensearchpy import AsyncOpenSearch

    from portal_search.index import ArticleIndex

    client = AsyncOpenSearch(hosts=["http://127.0.0.1:9"], max_retries=0, timeout=2)
    try:
        with pytest.raises(Exception) as info:
            await ArticleIndex(client).write(document_for(_published()))
        assert is_transient(info.value), repr(info.value)
    finally:
        await client.close()


def test_related_query_looks_like_the_article_but_never_returns_it_or_a_retraction() -> None:
    body = build_related_body("a-1", index="articles", size=4)
    query = body["query"]["bool"]
    (mlt,) = query["must"]
    assert mlt["more_like_this"]["like"] == [{"_index": "articles", "_id": "a-1"}]
    assert query["must_not"] == [{"ids": {"values": ["a-1"]}}]
    assert {"term": {"state": "published"}} in query["filter"]
    assert body["size"] == 4 and "body_text" not in body["_source"]
