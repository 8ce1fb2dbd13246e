"""The layout of the service's indices, free of I/O: the analysers they share, the text field,
and the article index's settings and mappings.

Each text is analysed once into its written and its folded words (``vi_indexed``) and searched
with analysers that keep diacritics (``vi_exact``) or fold them (``vi_folded``).
"""

from __future__ import annotations

from typing import Any

# The folding filters: OpenSearch's own, and the local stack node's table-driven twin (the same
# tokens, less CPU; deploy/jvm/opensearch). Indices are made with the fast one where the cluster
# has it (``index.folding_filter``): either way an index's words are the same.
STOCK_FOLDING = "asciifolding"
FAST_FOLDING = "portal_asciifolding"

# Version of the article index's layout, kept in its mapping's ``_meta``: an index behind the
# alias with an older layout is rebuilt (``rebuild.py``) when the service starts.
LAYOUT_VERSION = 2


def analysis_settings(folding: str = STOCK_FOLDING) -> dict[str, Any]:
    """The analysers every index of the service shares, folding with the filter ``folding``
    (``STOCK_FOLDING`` or ``FAST_FOLDING``).

    ``vi_indexed`` analyses a text once for both ways of searching it: each word is indexed as
    written (lower-cased) and, when it has marks, also folded (``đảng`` and ``dang``) at the
    same position, so phrases and highlights see one word. Queries pick a form with their own
    analyser: ``vi_exact`` keeps the marks, ``vi_folded`` drops them.
    """
    return {
        "filter": {
            "vi_fold_keep_original": {"type": folding, "preserve_original": True},
        },
        "analyzer": {
            "vi_indexed": {
                "type": "custom",
                "tokenizer": "standard",
                "filter": ["lowercase", "vi_fold_keep_original"],
            },
            "vi_exact": {
                "type": "custom",
                "tokenizer": "standard",
                "filter": ["lowercase"],
            },
            "vi_folded": {
                "type": "custom",
                "tokenizer": "standard",
                # Folding maps đ -> d and drops every tone and vowel mark.
                "filter": ["lowercase", folding],
            },
        },
    }


def text_field() -> dict[str, Any]:
    """A Vietnamese text field: written and folded words in one field, searched as written
    unless a query names ``vi_folded``."""
    return {"type": "text", "analyzer": "vi_indexed", "search_analyzer": "vi_exact"}


def merge_settings() -> dict[str, str]:
    """The merge policy of an article index (dynamic: also given to an index made before).

    Refreshes under load write a segment of a few dozen articles at a time; OpenSearch's tiered
    policy (10 segments per tier, 10 merged at once) rewrote each article about 2.5 times
    within its first few thousand, a fifth of OpenSearch's CPU. Letting 30 small segments
    gather before merging them at once halves that rewriting; a search visits a few more
    segments (a portal's index stays small).
    """
    return {
        "index.merge.policy.segments_per_tier": "30",
        "index.merge.policy.max_merge_at_once": "30",
    }


def index_definition(*, shards: int, replicas: int, folding: str = STOCK_FOLDING) -> dict[str, Any]:
    """Settings and mappings of a physical index (every version has the same layout)."""

    def long_text_field() -> dict[str, Any]:
        # Offsets in the postings let the highlighter skip re-analysing long bodies.
        return {**text_field(), "index_options": "offsets"}

    # Keywords only ever filtered on or read back: no doc values (those serve sorts and facets).
    def filter_keyword() -> dict[str, Any]:
        return {"type": "keyword", "doc_values": False}

    return {
        "settings": {
            "index": {
                "number_of_shards": shards,
                "number_of_replicas": replicas,
                # A refresh every few hundred ms writes a small segment each time: keep its files
                # as written rather than copying them all into one compound file (merges
                # still combine segments, so the number of files stays bounded).
                "use_compound_file": False,
                **{key.removeprefix("index."): value for key, value in merge_settings().items()},
            },
            "analysis": analysis_settings(folding),
        },
        "mappings": {
            "dynamic": "strict",
            "_meta": {"layout": LAYOUT_VERSION},
            "properties": {
                "article_id": {"type": "keyword"},
                "state": filter_keyword(),
                "revision": {"type": "long"},
                "title": text_field(),
                "summary": text_field(),
                "body_text": long_text_field(),
                "section": {"type": "keyword"},
                "source": {"type": "keyword"},
                "slug": filter_keyword(),
                "url_path": filter_keyword(),
                "published_at": {"type": "date"},
                "updated_at": {"type": "date", "index": False, "doc_values": False},
                "lead_image_url": {"type": "keyword", "index": False, "doc_values": False},
            },
        },
    }
