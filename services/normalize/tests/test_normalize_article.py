"""A whole article: structure, video players, metadata and rules, images, duplicates, report."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal_contracts.articles import ArticleContent, ImageRef
from portal_normalize.domain import (
    ImageOutcome,
    SourceRules,
    finish,
    normalize_content,
    prepare,
)
from portal_normalize.similarity import THRESHOLD, signature
from portal_normalize.similarity import similarity as sim
from portal_normalize.structure import IFRAME_ATTRIBUTES, canonical_structure
from portal_text import is_xml_safe

from .test_normalize_domain import XSS_PAYLOADS

PARAGRAPH = (
    "Đảng Cộng sản Việt Nam lãnh đạo toàn diện công tác xây dựng, chỉnh đốn Đảng và hệ thống "
    "chính trị trong sạch, vững mạnh; phát huy sức mạnh đại đoàn kết toàn dân tộc. "
)


def content(**overrides: object) -> ArticleContent:
    fields: dict[str, object] = {
        "title": "Hội nghị Ban Chấp hành Đảng bộ tỉnh",
        "section": "ct-tin-tuc-hoat-dong",
        "published_at": datetime(2025, 3, 1, 8, 30),
        "body_html": f"<p>{PARAGRAPH * 3}</p>",
        "summary": "Tóm tắt",
    }
    fields.update(overrides)
    return ArticleContent.model_validate(fields)


# --- structure ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            '<table><tr><td><img src="https://a.vn/1.jpg" alt="x"></td></tr>'
            "<tr><td><em>Toàn cảnh hội nghị. Ảnh: TTXVN</em></td></tr></table>",
            '<figure><img src="https://a.vn/1.jpg" alt="x"><figcaption>Toàn cảnh hội nghị. '
            "Ảnh: TTXVN</figcaption></figure>",
        ),
        ("<table><tr><td><p>Một</p><p>Hai</p></td></tr></table>", "<p>Một</p><p>Hai</p>"),
        (
            "<p>Một<br><br>Hai<br>vẫn hai<br><br><br>Ba</p>",
            "<p>Một</p><p>Hai<br>vẫn hai</p><p>Ba</p>",
        ),
        (
            "Chữ rời <b>đậm</b><h2>Mục</h2>đuôi",
            "<p>Chữ rời <strong>đậm</strong></p><h2>Mục</h2><p>đuôi</p>",
        ),
        (
            '<p><img src="https://a.vn/2.jpg"></p><p><em>Chú thích</em></p><p>Tiếp</p>',
            '<figure><img src="https://a.vn/2.jpg"><figcaption>Chú thích</figcaption></figure>'
            "<p>Tiếp</p>",
        ),
        (
            "<p> </p><p><strong></strong></p><ul><li></li></ul><h2><b>Mục</b></h2><p><br>Chữ<br></p>",
            "<h2>Mục</h2><p>Chữ</p>",
        ),
        (
            "<table><tr><th>A</th><th>B</th></tr><tr><td>1</td><td></td></tr></table>",
            "<table><tr><th>A</th><th>B</th></tr><tr><td>1</td><td></td></tr></table>",
        ),
    ],
    ids=[
        "image-table",
        "layout-table",
        "br-paragraphs",
        "loose-text",
        "caption",
        "empties",
        "data-table",
    ],
)
def test_one_canonical_structure(raw: str, expected: str) -> None:
    assert canonical_structure(raw)[0] == expected


def test_video_players_are_kept_sandboxed_and_other_frames_go() -> None:
    result = normalize_content(
        content(
            body_html=f"<p>{PARAGRAPH}</p>"
            '<iframe src="https://www.youtube.com/embed/dQw4w9WgXcQ?autoplay=1" onload="x()">'
            "<script>alert(1)</script></iframe>"
            '<iframe src="https://evil.example/embed/dQw4w9WgXcQ"></iframe>'
            '<iframe srcdoc="<script>alert(1)</script>"></iframe>'
        )
    )
    html = result.article.body_html
    assert html.count("<iframe") == 1
    assert 'src="https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ"' in html
    assert f'sandbox="{IFRAME_ATTRIBUTES["sandbox"]}"' in html
    assert "evil.example" not in html and "srcdoc" not in html and "alert" not in html
    assert "video_embedded" in {r.code for r in result.quality.repairs}


class _FinalAudit(HTMLParser):
    """The final body: the allow-list plus the attributes normalize itself adds."""

    ALLOWED: ClassVar[dict[str, set[str]]] = {
        "a": {"href", "rel"},
        "img": {"src", "alt", "srcset", "sizes", "width", "height", "loading", "decoding"},
        "iframe": {"src", *IFRAME_ATTRIBUTES},
        "th": {"colspan", "rowspan"},
        "td": {"colspan", "rowspan"},
    }

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name not in self.ALLOWED.get(tag, set()):
                self.problems.append(f"{tag}[{name}]")
            url = value or ""
            if name in ("href", "src") and not url.startswith(
                ("http:", "https:", "mailto:", "/media/")
            ):
                self.problems.append(f"{tag}[{name}={value}]")
        if tag in ("script", "style", "svg", "math", "object", "embed", "form"):
            self.problems.append(tag)


@pytest.mark.parametrize("payload", XSS_PAYLOADS)
def test_the_final_article_has_nothing_executable(payload: str) -> None:
    for outcomes in (None, {}):
        result = normalize_content(
            content(body_html=payload, title=payload[:400], summary=None), outcomes=outcomes
        )
        audit = _FinalAudit()
        audit.feed(result.article.body_html)
        assert audit.problems == [], result.article.body_html


# --- metadata and the source's rules ------------------------------------------------------------

RULES = SourceRules(
    categories={"Xây dựng Đảng": "ct-xay-dung-dang", "Tin tức - Sự kiện": "ct-tin-tuc-hoat-dong"},
    timezone="Asia/Ho_Chi_Minh",
)


@pytest.mark.parametrize(
    ("categories", "section"),
    [
        (["Xây dựng Đảng"], "ct-xay-dung-dang"),
        (["  XÂY DỰNG   ĐẢNG "], "ct-xay-dung-dang"),  # case and spacing
        (["Xay dung Dang"], "ct-xay-dung-dang"),  # without diacritics
        (["Trang chủ > Xây dựng Đảng"], "ct-xay-dung-dang"),  # a path
        (["Thể thao", "Tin tức - Sự kiện"], "ct-tin-tuc-hoat-dong"),  # the first known one
        (["§¶ng bé"], None),  # unknown
    ],
)
def test_categories_map_to_sections_by_the_sources_rules(
    categories: list[str], section: str | None
) -> None:
    result = normalize_content(content(section=None, categories=categories), RULES)
    assert result.article.section == section
    codes = {i.code for i in result.quality.issues}
    assert ("no_section" in codes) is (section is None)


def test_the_partners_section_wins_and_a_default_section_catches_the_rest() -> None:
    named = normalize_content(content(categories=["Xây dựng Đảng"]), RULES)
    assert named.article.section == "ct-tin-tuc-hoat-dong"
    rules = SourceRules(categories={}, default_section="ct-van-ban-tai-lieu")
    fallback = normalize_content(content(section=None, categories=["Khác"]), rules)
    assert fallback.article.section == "ct-van-ban-tai-lieu"


def test_naive_times_are_in_the_sources_zone_and_stored_as_utc() -> None:
    naive = content(published_at=datetime(2025, 3, 1, 8, 30))
    assert normalize_content(naive).article.published_at == datetime(2025, 3, 1, 1, 30, tzinfo=UTC)
    tokyo = SourceRules(timezone="Asia/Tokyo")
    assert normalize_content(naive, tokyo).article.published_at == datetime(
        2025, 2, 28, 23, 30, tzinfo=UTC
    )


def test_a_closing_byline_becomes_the_author() -> None:
    result = normalize_content(
        content(body_html=f"<p>{PARAGRAPH * 2}</p><p><strong>Minh Anh</strong></p>", author=None)
    )
    assert result.article.author == "Minh Anh"
    assert "Minh Anh" not in result.article.body_html
    explicit = normalize_content(content(author="Bài và ảnh: Trần Văn Bình"))
    assert explicit.article.author == "Trần Văn Bình"


def test_a_generated_summary_skips_the_dateline() -> None:
    result = normalize_content(content(summary=None, body_html=f"<p>(ĐCSVN) - {PARAGRAPH * 2}</p>"))
    assert result.article.summary.startswith("Đảng Cộng sản Việt Nam")
    assert len(result.article.summary) <= 300


def test_legacy_encodings_in_fields_and_body_are_repaired_and_reported() -> None:
    result = normalize_content(
        content(
            title="Héi nghÞ Ban ChÊp hµnh §¶ng bé tØnh",
            body_html=f'<p><font face=".VnTime">§¶ng bé tØnh</font> {PARAGRAPH * 2}</p>',
            author="Ng\u00c3\u00b4 V\u00c4\u0083n Nam",  # UTF-8 read as Latin-1
        )
    )
    assert result.article.title == "Hội nghị Ban Chấp hành Đảng bộ tỉnh"
    assert result.article.body_text.startswith("Đảng bộ tỉnh Đảng Cộng sản")
    assert result.article.author == "Ngô Văn Nam"
    repairs = {r.code: r.message for r in result.quality.repairs}
    assert "title" in repairs["encoding_tcvn3"] and "body" in repairs["encoding_tcvn3"]
    assert "author" in repairs["encoding_utf8_mojibake"]


# --- images -------------------------------------------------------------------------------------

LISTED = "https://anh.tinh.vn/lead.jpg"
BODY = "https://anh.tinh.vn/body.jpg"
ICON = "https://anh.tinh.vn/icon.png"
MISSING = "https://anh.tinh.vn/missing.jpg"
REFUSED = "http://169.254.169.254/latest/meta-data/x.jpg"


# --- characters XML forbids -------------------------------------------------------------------

XML_FORBIDDEN = [chr(c) for c in range(0x20) if c not in (0x09, 0x0A, 0x0D)] + ["\ufffe", "\uffff"]
# Lone surrogates cannot arrive raw: the event contract refuses them. As references they can.
RAW = "".join(XML_FORBIDDEN)
ENTITIES = "".join(f"&#{ord(c)};" for c in XML_FORBIDDEN) + "&#xD800;&#x1F;&#X0b;"


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


@pytest.mark.parametrize("junk", [RAW, ENTITIES], ids=["raw", "entities"])
def test_characters_xml_forbids_leave_every_field(junk: str) -> None:
    result = normalize_content(
        content(
            title=f"Hội nghị{junk} tỉnh ủy",
            summary=f"Tóm{junk} tắt",
            author=f"Minh{junk} Anh",
            categories=[f"Tin{junk} tức"],
            body_html=f'<p>{PARAGRAPH}{junk}</p><figure><img src="https://a.vn/1.jpg" '
            f'alt="Ảnh{junk}"><figcaption>Chú{junk} thích</figcaption></figure>',
            images=[ImageRef(url="https://a.vn/2.jpg", caption=f"Quang{junk} cảnh")],
        ),
        outcomes={u: stored(u) for u in ("https://a.vn/1.jpg", "https://a.vn/2.jpg")},
    )
    article = result.article
    strings = _strings(article.model_dump(mode="json"))
    assert strings and all(is_xml_safe(s) for s in strings)
    # The text around them is kept whole.
    assert article.title == "Hội nghị tỉnh ủy"
    assert article.summary == "Tóm tắt" and article.author == "Minh Anh"
    assert article.categories == ["Tin tức"]
    assert (
        'alt="Ảnh"' in article.body_html
        and "<figcaption>Chú thích</figcaption>" in article.body_html
    )
    # The listed image's caption is plain text: a reference there is literal text, harmless.
    assert {m.caption for m in article.images} == {
        "Quang cảnh" if junk == RAW else f"Quang{junk} cảnh",
        "Chú thích",
    }
    assert PARAGRAPH.strip() in article.body_text


def stored(url: str, width: int = 1200, height: int = 800) -> ImageOutcome:
    key = f"images/ab/{abs(hash(url))}/original.jpg"
    return ImageOutcome(
        url, object_key=key, width=width, height=height, renditions={320: key + "-320.webp"}
    )


def with_images() -> ArticleContent:
    return content(
        images=[ImageRef(url=LISTED, caption="Quang cảnh hội nghị")],
        body_html=(
            f"<p>{PARAGRAPH}</p>"
            f'<p><img src="{ICON}" alt="logo"></p>'
            f'<table><tr><td><img src="{BODY}" alt="Ảnh"></td></tr>'
            "<tr><td>Đại biểu biểu quyết</td></tr></table>"
            f'<figure><img src="{MISSING}"><figcaption>Ảnh không còn</figcaption></figure>'
            f'<p><a href="https://tinh.vn/anh"><img src="{REFUSED}"></a></p>'
            f"<p>{PARAGRAPH}</p>"
        ),
    )


def test_the_body_is_rewritten_to_the_stored_copies() -> None:
    outcomes = {
        LISTED: stored(LISTED),
        BODY: stored(BODY),
        ICON: stored(ICON, 120, 40),
        MISSING: ImageOutcome(MISSING, code="http_status", reason="HTTP 404"),
        REFUSED: ImageOutcome(REFUSED, code="refused_address", reason="cloud metadata service"),
    }
    result = normalize_content(with_images(), outcomes=outcomes, media_base_url="/media/")
    html = result.article.body_html
    body = outcomes[BODY]
    assert (
        f'<img src="/media/{body.object_key}" srcset="/media/{body.renditions[320]} 320w"' in html
    )
    assert 'width="1200" height="800" alt="Ảnh" loading="lazy"' in html
    assert "<figcaption>Đại biểu biểu quyết</figcaption>" in html
    assert "anh.tinh.vn" not in html and "169.254" not in html
    assert "Ảnh không còn" not in html  # a caption without its picture goes with it
    assert 'href="https://tinh.vn/anh"' not in html  # so does a link that only held it
    assert [m.original_url for m in result.article.images] == [LISTED, ICON, BODY]
    assert result.article.lead_image is not None
    assert result.article.lead_image.original_url == LISTED
    assert result.article.lead_image.caption == "Quang cảnh hội nghị"
    issues = {(i.code, i.message) for i in result.quality.issues}
    assert ("image_missing", f"{MISSING}: HTTP 404") in issues
    assert ("image_refused", f"{REFUSED}: cloud metadata service") in issues


def test_an_icon_is_never_the_lead_image() -> None:
    outcomes = {ICON: stored(ICON, 120, 40), BODY: stored(BODY)}
    result = normalize_content(with_images(), outcomes=outcomes)
    assert result.article.lead_image is not None
    assert result.article.lead_image.original_url == BODY


def test_an_article_whose_images_all_fail_is_still_whole() -> None:
    failures = {
        url: ImageOutcome(url, code="timeout", reason="no complete answer within 15 s")
        for url in (LISTED, BODY, ICON, MISSING, REFUSED)
    }
    result = normalize_content(with_images(), outcomes=failures)
    article = result.article
    assert article.title and article.body_text.count("Đảng Cộng sản") == 2
    assert article.images == [] and article.lead_image is None
    assert "<img" not in article.body_html
    missing = [i for i in result.quality.issues if i.code == "image_missing"]
    assert len(missing) == 5 and all(i.needs_person for i in missing)
    # Five missing images are one kind of problem for the editor.
    assert result.quality.score == 0.75 - min(
        0.2, 0.05 * len({r.code for r in result.quality.repairs})
    )


def test_an_inline_data_image_is_dropped_and_an_editor_told() -> None:
    body = f'<p>{PARAGRAPH}</p><p><img src="data:image/png;base64,iVBORw0KGgo="></p>'
    result = normalize_content(content(body_html=body))
    assert "data:" not in result.article.body_html
    assert "image_inline_dropped" in {i.code for i in result.quality.issues if i.needs_person}


def test_tracking_pixels_are_removed_without_troubling_an_editor() -> None:
    outcomes = {u: stored(u) for u in (LISTED, BODY, MISSING, REFUSED)}
    outcomes[ICON] = ImageOutcome(ICON, code="too_small", reason="1x1: a spacer or tracking pixel")
    result = normalize_content(with_images(), outcomes=outcomes)
    assert "tracking_pixel_removed" in {r.code for r in result.quality.repairs}
    assert not [i for i in result.quality.issues if ICON in i.message]


def test_images_over_the_limit_are_not_fetched_and_said_so() -> None:
    many = content(images=[ImageRef(url=f"https://anh.tinh.vn/{i}.jpg") for i in range(5)])
    draft = prepare(many, max_images=3)
    assert len(draft.images) == 3
    result = finish(draft, {c.url: stored(c.url) for c in draft.images})
    assert "too_many_images" in {i.code for i in result.quality.issues}


# --- near-duplicates ----------------------------------------------------------------------------

STORY = " ".join(
    [
        "Sáng 19/9, tại Hà Nội, Ban Tuyên giáo Trung ương tổ chức hội nghị sơ kết sáu tháng",
        "hoạt động của Cổng Thông tin điện tử Đảng Cộng sản Việt Nam. Cổng đã tích hợp 75.936",
        "tin, bài từ các cơ quan Đảng, bộ, ngành và địa phương; 90% được hậu kiểm, 74% được",
        "đăng tải. Hội nghị chỉ ra các khó khăn: nhiều trang của đối tác dùng công nghệ khác",
        "nhau, tin bài sai định dạng, thiếu ảnh; việc phối hợp với các nguồn tin còn hạn chế.",
        "Các đại biểu đề xuất phân quyền cho từng cơ quan tự cập nhật chuyên trang của mình.",
    ]
)
OTHER = " ".join(
    [
        "Chiều 20/9, Ủy ban Kiểm tra Trung ương họp kỳ thứ 30, xem xét kết quả kiểm tra dấu hiệu",
        "vi phạm đối với Ban Thường vụ Tỉnh ủy và thi hành kỷ luật đảng viên vi phạm; Ủy ban",
        "đề nghị cấp có thẩm quyền xem xét, thi hành kỷ luật theo quy định của Đảng và pháp luật.",
    ]
)


PINNED_STORY_SIGNATURE = "ac1becb8725ed031"  # blake2b-64 of pack(signature(STORY))


def test_the_same_story_resent_or_edited_is_similar_and_another_is_not() -> None:
    original = signature(STORY)
    assert original is not None
    resent = signature("TIN MỚI: " + STORY.replace("Hà Nội", "thủ đô Hà Nội"))
    edited = signature(STORY.replace("Các đại biểu đề xuất", "Nhiều ý kiến kiến nghị"))
    unaccented = signature(__import__("portal_text").fold(STORY))
    other = signature(OTHER)
    assert resent and edited and unaccented and other
    assert sim(original, resent) >= THRESHOLD
    assert sim(original, edited) >= THRESHOLD
    assert sim(original, unaccented) == 1.0
    assert sim(original, other) < 0.3
    assert signature("Tin ngắn quá") is None


def _signature_by_definition(text: str, hash_shingle: Callable[[list[str]], int]):
    """One hash per shingle, the smallest per bin, then densification: what is stored."""
    from portal_normalize import similarity as s

    tokens = s.words(text)
    shingles = {tuple(tokens[i : i + s.SHINGLE]) for i in range(len(tokens) - s.SHINGLE + 1)}
    if len(shingles) < s.MIN_SHINGLES:
        return None
    mins = [(1 << 64) - 1] * s.BINS
    for shingle in shingles:
        h = hash_shingle(list(shingle))
        mins[h >> 58] = min(mins[h >> 58], h)
    filled = list(mins)
    for i in range(s.BINS):
        if mins[i] == (1 << 64) - 1:
            for step in range(1, s.BINS):
                j = (i + step) % s.BINS
                if mins[j] != (1 << 64) - 1:
                    filled[i] = (mins[j] + step * 0x9E3779B97F4A7C15) & ((1 << 64) - 1)
                    break
    return tuple(filled)


def _scheme1_hash(shingle: list[str]) -> int:
    """Scheme 1: the 8-byte BLAKE2b of the shingle's words joined by spaces."""
    from portal_normalize.similarity_v1 import hash_shingle

    return hash_shingle(" ".join(shingle))


def _scheme2_hash(shingle: list[str]) -> int:
    """Scheme 2: Python's hash of the tuple of its words' 8-byte BLAKE2b, plus 2**63."""
    from portal_normalize.similarity import hash_word

    return hash(tuple(map(hash_word, shingle))) + (1 << 63)


def _definitions(text: str) -> tuple[object, object]:
    from portal_normalize import similarity_v1

    return (
        (signature(text), similarity_v1.signature(text)),
        (
            _signature_by_definition(text, _scheme2_hash),
            _signature_by_definition(text, _scheme1_hash),
        ),
    )


@pytest.mark.parametrize("words", [0, 3, 10, 11, 60, 400, 6000])
def test_signatures_stay_what_is_stored(words: int) -> None:
    vocabulary = PARAGRAPH.split()
    text = " ".join(vocabulary[i % len(vocabulary)] + str(i % 97) for i in range(words))
    made, defined = _definitions(text)
    assert made == defined


def test_a_known_text_keeps_its_signature() -> None:
    """Scheme 2's values rest on CPython's tuple hash (xxHash-style since 3.8): if a Python
    release changed it, stored signatures would no longer match new ones, and this fails
    (a new scheme would be needed)."""
    import hashlib

    from portal_normalize.similarity import pack

    sig = signature(STORY)
    assert sig is not None
    assert hashlib.blake2b(pack(sig), digest_size=8).hexdigest() == PINNED_STORY_SIGNATURE


# Words as articles write them: Vietnamese, quotes and dashes, and letters that do not fold to
# ASCII (the signature reads such text on its Unicode path).
_ARTICLE_WORDS = st.sampled_from(
    [*PARAGRAPH.split(), "“Đổi", "mới”", "–", "—", "…", "•", "«", "»", "K’Ho", "Bjørn", "café",
     "25°", "ﬁ", "HOÀ", "thuỷ", "x\u0301", "\u00a0", "\u200b"]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.lists(_ARTICLE_WORDS, max_size=120).map(" ".join), st.text()))
def test_the_signature_of_any_text_is_its_definition(text: str) -> None:
    made, defined = _definitions(text)
    assert made == defined


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.lists(_ARTICLE_WORDS, max_size=120).map(" ".join), st.text()))
def test_scheme_2_reads_the_words_scheme_1_reads(text: str) -> None:
    from portal_normalize.similarity import hash_word, word_hashes, words

    assert word_hashes(text) == [hash_word(w) for w in words(text)]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=2**64 - 1), min_size=64, max_size=64))
def test_band_keys_stay_what_is_stored(values: list[int]) -> None:
    """Each band's key: the signed 8-byte BLAKE2b of its four values, packed big-endian."""
    import hashlib
    import struct

    from portal_normalize.similarity import BANDS, ROWS, bands

    expected = [
        int.from_bytes(
            hashlib.blake2b(
                struct.pack(">4Q", *values[b * ROWS : (b + 1) * ROWS]), digest_size=8
            ).digest(),
            "big",
            signed=True,
        )
        for b in range(BANDS)
    ]
    assert bands(tuple(values)) == expected


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_ascii_words_are_the_word_runs_lowered(text: bytes) -> None:
    import re

    from portal_normalize.similarity import MAX_WORDS
    from portal_normalize.similarity_v1 import _split_ascii_words

    assert _split_ascii_words(text) == re.findall(rb"\w+", text.lower())[:MAX_WORDS]


_INLINE_MARKUP = st.lists(
    st.one_of(
        st.text(max_size=20),
        st.sampled_from(
            ["<b>", "</b>", "<script>x</script>", "<style>p{}</style>", "<!-- c -->", "&amp;",
             "&nbsp;", "<a href='/x' onclick='y'>", "</a>", "<br/>", "<", ">", "<p", "Đảng"]
        ),
    ),
    max_size=20,
).map("".join)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(_INLINE_MARKUP)
def test_the_inline_cleaner_is_nh3_clean_with_its_options(raw: str) -> None:
    import nh3

    from portal_normalize.plain_text import INLINE_CLEANER

    expected = nh3.clean(raw, tags=set(), clean_content_tags={"script", "style"})
    assert INLINE_CLEANER.clean(raw) == expected
