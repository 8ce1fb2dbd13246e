"""The local stack node's ``portal_asciifolding`` against OpenSearch's ``asciifolding``, on the
real node: the same tokens (terms, positions, offsets, types), and the service's indices made
with it.

The fast filter replaces the stock one only because its output is the same for every input; an
index made with either then holds the same words, so a difference here is a search bug.
"""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal

import pytest
from opensearchpy import AsyncOpenSearch

from portal_launcher.settings import StackSettings
from portal_search.app import prepare_indices
from portal_search.index import ArticleIndex, folding_filter, has_token_filter
from portal_search.layout import FAST_FOLDING, STOCK_FOLDING
from portal_search.questions import QuestionIndex

pytestmark = pytest.mark.stack

_BASES = "aăâeêioôơuưy"
# No mark, grave (huyền), acute (sắc), hook (hỏi), tilde (ngã), dot below (nặng).
_TONES = ("", "\u0300", "\u0301", "\u0309", "\u0303", "\u0323")


def _vietnamese_vowels(form: Literal["NFC", "NFD"]) -> str:
    """Every vowel with every tone, lower and upper case, in Unicode normal form ``form``."""
    words = []
    for base in _BASES + _BASES.upper():
        words.append("".join(unicodedata.normalize(form, base + tone) for tone in _TONES))
    return " ".join(words)


_ARTICLE = (
    "Đảng Cộng sản Việt Nam lãnh đạo sự nghiệp đổi mới; Thủ tướng Chính phủ chỉ đạo các Bộ, "
    "ngành tăng cường phòng, chống thiên tai, bảo đảm an toàn tính mạng và tài sản của Nhân dân."
)
CORPUS = [
    _ARTICLE,
    unicodedata.normalize("NFD", _ARTICLE),
    _vietnamese_vowels("NFC"),
    _vietnamese_vowels("NFD"),
    "đ Đ đĐ ĐẢNG đảng ĐảNg dĐd Quốc HỘI quốc hội QuỐc",
    # Latin-1 and Latin Extended-A/B, with the letters that fold to two or more.
    "ÀÁÂÃÄÅ àáâãäå Ç ç ÈÉÊË ÌÍÎÏ Ð ð Ñ ñ ÒÓÔÕÖØ òóôõöø ÙÚÛÜ Ý ý ÿ Þ þ "
    "Āā Ăă Ąą Čč Ďď Ęě Ğğ Ħħ Ĳĳ Łł Ŋŋ Œœ Řř Şş Šš Ŧŧ Ůů Žž ſ ƒ Ǆ ǅ ǆ Ǳ ǲ ǳ ȸ ȹ ŉ",
    "æ Æ ß ẞ ﬁ ﬂ ﬀ ﬃ ﬄ ﬅ ﬆ straße Encyclopædia œuvre",
    "ＡＢＣ ａｂｃ １２３ Ｗｉｄｅ ﬁｎａｌ",
    "⑽ ⒜ ① ⓐ Ⓐ ⁽ ₍ ² ³ ¹ ½ ‐ ‘ ’ “ ” « » ‹ › — …",
    "0123456789 ٠١٢٣ ０１２ 2024-12-05 3,14",
    "中文 日本語の文章 한국어 ภาษาไทย Ελληνικά Русский עברית العربية",
    # Astral characters (surrogate pairs in UTF-16): emoji, a flag, math letters, CJK Ext B.
    "😀 👍🏽 🇻🇳 👨‍👩‍👧 𝒜𝒷𝒸 𝐀𝐁𝐂 𠜎𠜱 a😀b Đ😀đ ế𝒜ệ",
    "x" * 300 + "ệ" * 300,  # longer than the filters' first output buffer
    "",
    " ",
    "\n\t ",
    "-",
    "…",
]

ANALYSES = [
    ("standard", ["lowercase"]),  # the service's analysers
    ("whitespace", []),  # punctuation, emoji and case reach the filter as they are
    ("keyword", []),  # the whole text as one token
]


@pytest.fixture
async def client(stack_settings: StackSettings) -> AsyncIterator[AsyncOpenSearch]:
    async with AsyncOpenSearch(hosts=[stack_settings.opensearch_url], timeout=60) as c:
        yield c


async def analyze(
    client: AsyncOpenSearch,
    text: str | list[str],
    folding: str,
    *,
    preserve: bool,
    tokenizer: str = "keyword",
    before: list[str] | None = None,
    after: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    fold = {"type": folding, "preserve_original": preserve}
    body = {
        "tokenizer": tokenizer,
        "filter": [*(before or []), fold, *(after or [])],
        "text": text,
    }
    found = await client.indices.analyze(body=body)
    tokens: list[dict[str, Any]] = found["tokens"]
    return tokens


async def test_the_node_has_the_fast_filter_and_the_service_picks_it(
    client: AsyncOpenSearch,
) -> None:
    assert await has_token_filter(client, FAST_FOLDING)
    assert await has_token_filter(client, STOCK_FOLDING)
    assert not await has_token_filter(client, "no_such_folding")  # the 400 of a missing filter
    assert await folding_filter(client) == FAST_FOLDING


@pytest.mark.parametrize("preserve", [False, True])
@pytest.mark.parametrize(("tokenizer", "before"), ANALYSES)
async def test_fast_folding_gives_the_stock_tokens_on_the_corpus(
    client: AsyncOpenSearch, tokenizer: str, before: list[str], preserve: bool
) -> None:
    options: dict[str, Any] = {"preserve": preserve, "tokenizer": tokenizer, "before": before}
    for text in CORPUS:
        stock = await analyze(client, text, STOCK_FOLDING, **options)
        fast = await analyze(client, text, FAST_FOLDING, **options)
        assert fast == stock, text
    # Several values in one request: the filter is reset between them.
    stock = await analyze(client, CORPUS, STOCK_FOLDING, **options)
    assert await analyze(client, CORPUS, FAST_FOLDING, **options) == stock


@pytest.mark.parametrize("preserve", [False, True])
async def test_fast_folding_gives_the_stock_token_for_every_bmp_character(
    client: AsyncOpenSearch, preserve: bool
) -> None:
    """Each UTF-16 unit as a token of its own (lone surrogates cannot travel as JSON text; the
    astral characters of the corpus cover them in pairs)."""
    units = [chr(c) for c in range(0x20, 0x10000) if not 0xD800 <= c <= 0xDFFF]
    chunk = 4000  # under _analyze's 10,000 tokens with the originals kept
    folded = 0
    for start in range(0, len(units), chunk):
        values = units[start : start + chunk]
        stock = await analyze(client, values, STOCK_FOLDING, preserve=preserve)
        assert await analyze(client, values, FAST_FOLDING, preserve=preserve) == stock
        if preserve:  # an original kept after each folded token
            folded += len(stock) - len(values)
        else:
            folded += sum(1 for v, t in zip(values, stock, strict=True) if t["token"] != v)
    assert folded > 1000  # not a filter that folds nothing: Lucene folds over a thousand


async def test_fast_folding_normalizes_as_the_stock_filter(client: AsyncOpenSearch) -> None:
    """A normalizer (and a multi-term query) takes a filter only if it can normalize, and then
    folds without keeping the original."""
    index = f"zz_fold_norm_{uuid.uuid4().hex[:8]}"
    normalizers = {
        folding: {"type": "custom", "filter": ["lowercase", folding]}
        for folding in (STOCK_FOLDING, FAST_FOLDING)
    }
    await client.indices.create(
        index=index, body={"settings": {"analysis": {"normalizer": normalizers}}}
    )
    try:
        for text in CORPUS:
            answers = [
                await client.indices.analyze(
                    index=index, body={"normalizer": name, "text": text or "x"}
                )
                for name in (STOCK_FOLDING, FAST_FOLDING)
            ]
            assert answers[0] == answers[1], text
    finally:
        await client.indices.delete(index=index)


async def test_fast_folding_before_synonyms_parses_the_rules_as_the_stock_filter(
    client: AsyncOpenSearch,
) -> None:
    """Synonym rules are analysed by the filters before them, with the originals not kept."""
    synonyms = {"type": "synonym", "synonyms": ["Đảng ủy, ban chấp hành", "Hà Nội => thủ đô"]}
    text = "Đảng ủy Hà Nội họp; dang uy ha noi"
    for preserve in (False, True):
        answers = [
            await analyze(
                client,
                text,
                folding,
                preserve=preserve,
                tokenizer="standard",
                before=["lowercase"],
                after=[synonyms],
            )
            for folding in (STOCK_FOLDING, FAST_FOLDING)
        ]
        assert answers[0] == answers[1]
        assert {"ban", "thu"} <= {t["token"] for t in answers[0]}  # the rules applied


async def test_the_services_indices_are_made_with_the_fast_filter(
    client: AsyncOpenSearch,
) -> None:
    """The start-up of the service (prepare_indices) on a node that has the filter: both the
    article and the question index fold with it, and a folded search finds a marked word."""
    tag = uuid.uuid4().hex[:8]
    articles = ArticleIndex(client, alias=f"zz_fold_articles_{tag}")
    questions = QuestionIndex(client, alias=f"zz_fold_questions_{tag}")
    try:
        await prepare_indices(client, [articles, questions])
        for index in (articles, questions):
            assert index.folding == FAST_FOLDING
            name = await index.current_index()
            assert name is not None
            found = await client.indices.get_settings(index=name)
            analysis = found[name]["settings"]["index"]["analysis"]
            assert analysis["filter"]["vi_fold_keep_original"]["type"] == FAST_FOLDING
            assert analysis["analyzer"]["vi_folded"]["filter"] == ["lowercase", FAST_FOLDING]
        await client.index(
            index=articles.alias,
            id="1",
            body={"title": "Đảng ủy khối", "state": "published"},
            refresh=True,
        )
        query = {"query": {"match": {"title": {"query": "dang uy", "analyzer": "vi_folded"}}}}
        hits = (await client.search(index=articles.alias, body=query))["hits"]["hits"]
        assert [h["_id"] for h in hits] == ["1"]
    finally:
        await client.indices.delete(index=f"zz_fold_*_{tag}-v*")
