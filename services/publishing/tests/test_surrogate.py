"""Unit tests of the surrogate keys: what each representation carries, what an event touches,
and that every page showing an article is purged by that article's events."""

from __future__ import annotations

from datetime import UTC, datetime

from portal_contracts.articles import ArticlePublished, NormalizedArticle, PublishedState
from portal_publishing import surrogate
from portal_publishing.purger import merged
from portal_runtime import surrogate as key

NOW = datetime(2026, 1, 5, 3, 0, tzinfo=UTC)


def published(
    article_id: str = "a1",
    *,
    source: str = "tp-ha-noi",
    section: str | None = "ct-tin-tuc-hoat-dong",
    state: PublishedState = PublishedState.PUBLISHED,
    revision: int = 1,
) -> ArticlePublished:
    article = (
        NormalizedArticle(
            title="Tin", summary="x", body_html="<p>x</p>", body_text="x", section=section
        )
        if state == PublishedState.PUBLISHED
        else None
    )
    return ArticlePublished(
        article_id=article_id,
        source=source,
        revision=revision,
        state=state,
        slug="tin",
        url_path="/bai-viet/tin",
        published_at=NOW,
        updated_at=NOW,
        article=article,
    )


def test_a_publication_touches_its_article_section_subsite_home_and_sitemaps_softly() -> None:
    purge = surrogate.touched_by(published())
    assert purge.soft == (
        "article:a1",
        "section:ct-tin-tuc-hoat-dong",
        "subsite:tp-ha-noi",
        "home",
        "sitemap",
    )
    assert purge.hard == ()


def test_a_retraction_removes_the_article_everywhere_and_only_staleness_elsewhere() -> None:
    purge = surrogate.touched_by(published(state=PublishedState.RETRACTED, revision=2))
    # Hard: the article and every page listing it (they carry its key).
    assert purge.hard == ("article:a1",)
    # Soft: what changes only by its absence stays available while publishing is down.
    assert purge.soft == ("subsite:tp-ha-noi", "home", "sitemap")
    assert purge.keys == ("article:a1", "subsite:tp-ha-noi", "home", "sitemap")


def test_an_article_without_a_section_touches_no_section() -> None:
    assert not any(
        k.startswith("section:") for k in surrogate.touched_by(published(section=None)).keys
    )


def test_representations_carry_what_they_show() -> None:
    assert surrogate.site() == ["site"]
    assert surrogate.home(["a1", "a2"]) == ["home", "site", "article:a1", "article:a2"]
    assert surrogate.section_list("s", ["a1"]) == ["section:s", "site", "article:a1"]
    assert surrogate.subsite_list("tp-ha-noi", []) == ["subsite:tp-ha-noi", "site"]
    assert surrogate.article("a1") == ["article:a1", "site"]
    feed = surrogate.feed(surrogate.section_list("s", ["a1"]))
    assert feed == ["feed", "section:s", "site", "article:a1"]
    assert surrogate.sitemap() == ["sitemap"]


def test_every_page_showing_an_article_is_purged_by_each_of_its_events() -> None:
    """Where the article was (before a move or a retraction) and where it goes."""
    before = published(section="tin-hoat-dong")
    moved = published(section="xay-dung-dang", revision=2)
    retracted = published(state=PublishedState.RETRACTED, revision=3)
    showing_it = [
        surrogate.article("a1"),
        surrogate.home(["a1"]),
        surrogate.section_list("tin-hoat-dong", ["zz", "a1"]),  # its old section
        surrogate.subsite_list("tp-ha-noi", ["a1"]),
        surrogate.feed(surrogate.section_list("tin-hoat-dong", ["a1"])),
        surrogate.sitemap(),
    ]
    for event in (before, moved, retracted):
        touched = set(surrogate.touched_by(event).keys)
        for keys in showing_it:
            assert touched & set(keys), (event.state, keys)
    # After a retraction nothing that listed the article can be served stale.
    hard = set(surrogate.touched_by(retracted).hard)
    for keys in showing_it[:-1]:  # the sitemaps do not name their articles (too many)
        assert hard & set(keys), keys
    # The list it moves to did not show it yet, and is touched too.
    assert set(surrogate.touched_by(moved).keys) & set(surrogate.section_list("xay-dung-dang", []))


def test_pages_not_showing_the_article_are_left_alone() -> None:
    touched = set(surrogate.touched_by(published()).keys)
    untouched = [
        surrogate.article("a2"),
        surrogate.section_list("van-ban-moi", ["a2"]),
        surrogate.subsite_list("bo-y-te", ["a3"]),
        surrogate.feed(surrogate.subsite_list("bo-y-te", ["a3"])),
        surrogate.site(),
    ]
    for keys in untouched:
        assert not touched & set(keys), keys


def test_header_values_are_distinct_keys_without_separators() -> None:
    assert key.header_value(["home", "site", "home", "", "a b", "a,b", key.article("x")]) == (
        "home site article:x"
    )


def test_a_batch_of_events_purges_each_key_once_and_removes_what_any_removes() -> None:
    edited = surrogate.Purge(soft=("article:a", "home", "sitemap"))
    retracted = surrogate.Purge(soft=("home", "sitemap", "subsite:x"), hard=("article:a",))
    other = surrogate.Purge(soft=("article:b", "home"))

    purge = merged([edited, retracted, other])

    assert purge.hard == ("article:a",)
    assert purge.soft == ("home", "sitemap", "subsite:x", "article:b")
    assert merged([]).keys == ()
