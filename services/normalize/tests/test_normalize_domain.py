"""Normalisation logic: safe HTML, Vietnamese text, summaries, quality reports (no infrastructure)."""

from __future__ import annotations

import unicodedata
import uuid
from datetime import UTC, datetime
from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal_contracts.articles import (
    ArticleAction,
    ArticleContent,
    ArticleIngested,
    Channel,
    ImageRef,
    article_id_for,
)
from portal_normalize.domain import (
    ALLOWED_ATTRIBUTES,
    ALLOWED_TAGS,
    Findings,
    NormalizeRefused,
    cut_at_word,
    html_to_text,
    is_newer,
    normalize_content,
    normalized_data,
    sanitize_html,
)

# Payloads from the usual XSS cheat sheets: each must leave nothing executable.
XSS_PAYLOADS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=https://evil.example/x.js></SCRIPT>",
    '<a href="javascript:alert(1)">x</a>',
    '<a href="  JaVaScRiPt:alert(1)">x</a>',
    '<a href="java\tscript:alert(1)">x</a>',
    '<a href="&#106;avascript:alert(1)">x</a>',
    '<a href="&#x6A;&#x61;&#x76;&#x61;script:alert(1)">x</a>',
    '<a href="vbscript:msgbox(1)">x</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
    '<img src=x onerror="alert(1)">',
    '<img src="https://ok.example/a.png" onerror=alert(1) onload=alert(2)>',
    '<img src="javascript:alert(1)">',
    '<img src="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+">',
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    '<svg><a xlink:href="javascript:alert(1)"><text>x</text></a></svg>',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    '<iframe src="https://evil.example"></iframe>',
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    '<object data="https://evil.example/x.swf"></object>',
    '<embed src="https://evil.example/x.swf">',
    '<p style="background:url(javascript:alert(1))">x</p>',
    '<div style="width: expression(alert(1))">x</div>',
    "<style>body{background:url('javascript:alert(1)')}</style>",
    '<body onload="alert(1)">',
    '<input autofocus onfocus="alert(1)">',
    '<details open ontoggle="alert(1)">',
    '<form action="javascript:alert(1)"><button>x</button></form>',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<link rel="stylesheet" href="javascript:alert(1)">',
    '<base href="javascript:alert(1)//">',
    '<table background="javascript:alert(1)"><tr><td>x</td></tr></table>',
    '<p><font face="VNI-Times" color="red" onmouseover="alert(1)">x</font></p>',
    "<!--<img src=x onerror=alert(1)>-->",
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    '"><script>alert(1)</script>',
    "<scr<script>ipt>alert(1)</script>",
    '<a href="https://ok.example" target="_blank" class="btn" id="x">ok</a>',
]


class _Audit(HTMLParser):
    """Every tag, attribute and URL in the output, to check them against the allow-list."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED_TAGS:
            self.problems.append(f"tag {tag}")
        allowed = ALLOWED_ATTRIBUTES.get(tag, set()) | ({"rel"} if tag == "a" else set())
        for name, value in attrs:
            if name not in allowed:
                self.problems.append(f"attribute {tag}[{name}]")
            if name == "rel" and value != "noopener noreferrer nofollow":
                self.problems.append(f"rel {value}")
            if name in ("href", "src"):
                scheme = (value or "").split(":", 1)[0].lower()
                schemes = {"http", "https"} if tag == "img" else {"http", "https", "mailto"}
                if scheme not in schemes:
                    self.problems.append(f"url {value}")

    handle_startendtag = handle_starttag


def audit(safe_html: str) -> list[str]:
    parser = _Audit()
    parser.feed(safe_html)
    parser.close()
    lowered = safe_html.lower()
    for needle in ("<script", "<iframe", "<svg", "<style"):
        if needle in lowered:
            parser.problems.append(f"text {needle}")
    return parser.problems


@pytest.mark.parametrize("payload", XSS_PAYLOADS)
def test_script_injection_leaves_nothing_executable(payload: str) -> None:
    findings = Findings()
    safe = sanitize_html(payload, findings, base_url="https://tinh.example.vn/tin/1.html")
    assert audit(safe) == [], safe


@pytest.mark.parametrize("payload", XSS_PAYLOADS[:-1])
def test_each_removal_is_reported(payload: str) -> None:
    findings = Findings()
    sanitize_html(payload, findings, base_url=None)
    if payload.startswith("<!--"):
        return  # a comment is dropped silently: it was never content
    assert findings.repairs, payload


_FRAGMENTS = st.sampled_from(
    [
        "<a href='",
        "javascript:",
        "https://x.vn/",
        "<img src=",
        " onerror=",
        "alert(1)",
        "<svg",
        "<script>",
        "</script>",
        "<iframe>",
        "<p style='",
        "expression(",
        "'>",
        '"',
        ">",
        "<",
        "</p>",
        "&#106;",
        "<div>",
        "Hoà bình",
        "<!--",
        "-->",
        "<math>",
        "<style>",
        " ",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_FRAGMENTS, max_size=30).map("".join))
def test_any_mix_of_dangerous_fragments_stays_on_the_allow_list(raw: str) -> None:
    assert audit(sanitize_html(raw, Findings(), base_url="https://x.vn/a/")) == []


def test_allowed_markup_survives_with_safe_links() -> None:
    raw = (
        "<h2>Mục 1</h2><p>Đoạn <strong>đậm</strong> <em>nghiêng</em> <u>gạch</u><br>dòng</p>"
        "<blockquote>Trích dẫn</blockquote><ul><li>một</li></ul><ol><li>hai</li></ol>"
        '<table><tr><th colspan="2">Bảng</th></tr><tr><td>a</td><td>b</td></tr></table>'
        '<figure><img src="https://anh.vn/a.jpg" alt="Ảnh"><figcaption>Chú thích</figcaption></figure>'
        '<p><a href="https://nhandan.vn/bai">liên kết</a> <a href="mailto:toasoan@x.vn">thư</a></p>'
    )
    safe = sanitize_html(raw, Findings())
    for fragment in (
        "<h2>Mục 1</h2>",
        "<strong>đậm</strong>",
        "<br>",
        "<blockquote>",
        "<li>một</li>",
        '<th colspan="2">',
        '<img src="https://anh.vn/a.jpg" alt="Ảnh">',
        "<figcaption>",
        '<a href="https://nhandan.vn/bai" rel="noopener noreferrer nofollow">',
        '<a href="mailto:toasoan@x.vn" rel="noopener noreferrer nofollow">',
    ):
        assert fragment in safe


def test_relative_urls_resolve_against_the_canonical_url_or_go() -> None:
    raw = '<p><a href="/tin/2.html">bài khác</a><img src="anh/1.jpg" alt="x"></p>'
    resolved = sanitize_html(raw, Findings(), base_url="https://tinh.vn/tin/1.html")
    assert 'href="https://tinh.vn/tin/2.html"' in resolved
    assert 'src="https://tinh.vn/tin/anh/1.jpg"' in resolved
    findings = Findings()
    dropped = sanitize_html(raw, findings, base_url=None)
    assert dropped == "<p>bài khác</p>"  # a dead link keeps its text, an image without src goes
    assert [r.code for r in findings.repairs] == ["unsafe_url_removed"]


def test_the_report_counts_every_removal_of_repeated_markup() -> None:
    raw = (
        '<p><font color="red">một</font> <font color="red">hai</font></p>'
        '<p><a href="/x" onclick="a()">ba</a> <a href="/x" onclick="a()">bốn</a></p>'
    )
    findings = Findings()
    sanitize_html(raw, findings, base_url=None)
    said = {r.code: r.message for r in findings.repairs}
    assert said["markup_removed"] == "disallowed elements removed: font x2"
    assert said["attributes_removed"] == "disallowed attributes removed: color x2, event handler x2"
    assert said["unsafe_url_removed"].endswith(": 2")  # relative links with nothing to resolve
    findings = Findings()
    sanitize_html(raw, findings, base_url="https://tinh.vn/tin/1.html")
    assert "unsafe_url_removed" not in {r.code for r in findings.repairs}


def test_images_are_http_only_links_may_be_mailto() -> None:
    safe = sanitize_html('<img src="mailto:a@b.vn"><a href="mailto:a@b.vn">thư</a>', Findings())
    assert "<img" not in safe
    assert 'href="mailto:a@b.vn"' in safe


def test_legacy_layout_becomes_paragraphs_and_h1_becomes_h2() -> None:
    findings = Findings()
    safe = sanitize_html(
        '<div class="content"><div>Đoạn một</div><div>Đoạn hai</div></div><h1>Tiêu đề</h1>'
        '<font face=".VnTime">chữ</font>',
        findings,
    )
    assert "<p>Đoạn một</p>" in safe
    assert "<p>Đoạn hai</p>" in safe
    assert "<h2>Tiêu đề</h2>" in safe
    assert "chữ" in safe
    assert "<font" not in safe
    codes = {r.code for r in findings.repairs}
    assert {"markup_removed", "attributes_removed", "layout_mapped"} <= codes


def test_html_to_text_keeps_paragraphs_and_decodes_entities() -> None:
    text = html_to_text("<h2>Mục</h2><p>Một &amp; hai&nbsp; ba</p><ul><li>a</li><li>b</li></ul>")
    assert text == "Mục\n\nMột & hai ba\n\na\n\nb"


def test_cut_at_word() -> None:
    text = "Đảng Cộng sản Việt Nam lãnh đạo toàn diện " * 20
    cut = cut_at_word(text, 50)
    assert len(cut) <= 50
    assert cut.endswith("…")
    assert text.startswith(cut[:-1])
    assert text[len(cut) - 1] == " "  # the cut falls between words
    assert cut_at_word("ngắn gọn", 50) == "ngắn gọn"


def _content(**overrides: object) -> ArticleContent:
    fields: dict[str, object] = {
        "title": "Hội nghị Ban Chấp hành",
        "section": "ct-tin-tuc-hoat-dong",
        "published_at": datetime(2025, 3, 1, 8, 30),
        "body_html": "<p>" + "Đảng Cộng sản Việt Nam lãnh đạo toàn diện. " * 10 + "</p>",
        "images": [ImageRef(url="https://anh.vn/1.jpg", caption="Ảnh hoà bình")],
    }
    fields.update(overrides)
    return ArticleContent.model_validate(fields)


def test_clean_article_scores_one() -> None:
    result = normalize_content(_content(summary="Tóm tắt của đối tác"))
    assert result.quality.score == 1.0
    assert result.quality.issues == []
    assert result.article.summary == "Tóm tắt của đối tác"
    assert result.article.published_at == datetime(2025, 3, 1, 1, 30, tzinfo=UTC)  # UTC+7
    assert result.article.lead_image is not None
    assert result.article.lead_image.caption == "Ảnh hòa bình"


def test_text_is_nfc_with_one_tone_placement() -> None:
    decomposed = unicodedata.normalize("NFD", "Thuỷ lợi hoà bình")
    result = normalize_content(
        _content(title=decomposed, body_html=f"<p>{decomposed}</p>", summary=decomposed)
    )
    assert result.article.title == "Thủy lợi hòa bình"
    assert result.article.summary == "Thủy lợi hòa bình"
    assert "Thủy lợi hòa bình" in result.article.body_html
    assert result.article.body_text == "Thủy lợi hòa bình"
    assert "text_normalized" in {r.code for r in result.quality.repairs}


def test_title_is_cleaned_of_markup_and_entities() -> None:
    result = normalize_content(_content(title="  <b>Hội nghị</b> &quot;lần thứ 8&quot;  "))
    assert result.article.title == 'Hội nghị "lần thứ 8"'
    assert "title_cleaned" in {r.code for r in result.quality.repairs}


def test_summary_falls_back_to_the_body_cut_at_a_word() -> None:
    result = normalize_content(_content(summary=None))
    assert 0 < len(result.article.summary) <= 300
    assert result.article.summary.endswith("…")
    assert "summary_generated" in {r.code for r in result.quality.repairs}


def test_problems_an_editor_must_see_lower_the_score() -> None:
    result = normalize_content(
        _content(title="T" * 250, section=None, body_html="<script>x()</script>", images=[])
    )
    codes = {i.code for i in result.quality.issues}
    assert {"title_too_long", "empty_body", "no_section", "no_image", "no_summary"} <= codes
    assert result.quality.score < 0.5


def test_text_without_any_diacritic_is_flagged() -> None:
    result = normalize_content(
        _content(body_html="<p>" + "Dang Cong san Viet Nam lanh dao toan dien. " * 5 + "</p>")
    )
    assert "no_diacritics" in {i.code for i in result.quality.issues}


def _ingested(action: ArticleAction, content: ArticleContent | None) -> ArticleIngested:
    ext = uuid.uuid4().hex
    return ArticleIngested(
        article_id=article_id_for("tinh-ha-noi", ext),
        source="tinh-ha-noi",
        external_id=ext,
        revision=2,
        action=action,
        channel=Channel.REST,
        received_at=datetime.now(UTC),
        content=content,
        raw_object_key="raw/x.json",
    )


def test_upsert_becomes_a_normalized_article() -> None:
    ingested = _ingested(ArticleAction.UPSERT, _content(body_html="<p>x<script>y</script></p>"))
    data = normalized_data(ingested)
    assert (data.article_id, data.revision, data.action) == (
        ingested.article_id,
        2,
        ArticleAction.UPSERT,
    )
    assert data.article is not None
    assert data.article.body_html == "<p>x</p>"
    assert data.quality is not None
    assert data.raw_object_key == "raw/x.json"


def test_retraction_passes_through_without_an_article() -> None:
    data = normalized_data(_ingested(ArticleAction.RETRACT, None))
    assert data.action is ArticleAction.RETRACT
    assert data.article is None
    assert data.quality is None


def test_upsert_without_content_is_refused() -> None:
    with pytest.raises(NormalizeRefused):
        normalized_data(_ingested(ArticleAction.UPSERT, None))


def test_only_a_newer_revision_is_normalised() -> None:
    assert is_newer(1, None)
    assert is_newer(3, 2)
    assert not is_newer(2, 2)
    assert not is_newer(1, 2)
