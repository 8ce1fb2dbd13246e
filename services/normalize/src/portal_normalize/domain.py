"""Normalisation of a partner article: pure logic, no I/O.

The steps, in order, on a ``Findings`` collector that becomes the quality report:
1. text repair (``text_repair``): legacy Vietnamese font encodings (TCVN3, VNI, VISCII),
   Windows-1258 and UTF-8 mojibake, run by run in the body and field by field;
2. markup: sanitised to a small allow-list (nh3, the Rust ammonia sanitiser): nothing
   executable survives, links get ``rel="noopener noreferrer nofollow"``, URLs are http/https
   (and mailto for links), relative URLs are resolved against the article's canonical URL,
   iframes survive only as allow-listed video players; then one canonical structure
   (``structure``: figures with captions, no layout tables, no empty elements);
3. text in NFC with one tone-mark placement ("hoà" -> "hòa"); a plain-text body;
4. metadata: title, summary (the partner's, else the first paragraph cut at a word), author
   (else a byline closing the body), publication time in the source's time zone stored as
   UTC, the section from the partner or from the source's category mapping;
5. images: ``prepare`` lists them, the service fetches and stores them, ``finish`` rewrites the
   body to the stored copies, picks the lead image and reports each image that failed;
6. a quality report: what was repaired, what an editor should look at, and a score.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import lxml.html
import nh3

from portal_contracts.articles import (
    ArticleAction,
    ArticleContent,
    ArticleIngested,
    ArticleNormalized,
    MediaRef,
    NormalizedArticle,
    QualityIssue,
    QualityReport,
)
from portal_contracts.topics import MAX_MESSAGE_BYTES
from portal_normalize.structure import canonical_structure, video_embed
from portal_normalize.text_repair import RepairLog, describe, repair_html, repair_text
from portal_text import (
    fold,
    has_vietnamese_diacritics,
    needs_tone_placement,
    normalize_tone_placement,
    xml_safe,
)

DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"
# Naive source times are Vietnamese local time (UTC+7, no daylight saving) by default.
VIETNAM_TZ = timezone(timedelta(hours=7), DEFAULT_TIMEZONE)

SUMMARY_CHARS = 300
TITLE_MAX_CHARS = 200
SHORT_BODY_CHARS = 200
LEAD_MIN_WIDTH = 300  # narrower body images are icons or logos, not a lead picture
# Below the portal's Kafka message limit: a bigger event would block the outbox relay.
MAX_EVENT_BYTES = MAX_MESSAGE_BYTES - 64 * 1024

# --- the allow-list -------------------------------------------------------------------------

_TEXT_TAGS = {"h2", "h3", "h4", "h5", "h6", "p", "br", "strong", "em", "b", "i", "u"}
_BLOCK_TAGS = {"blockquote", "ul", "ol", "li", "figure", "figcaption"}
_TABLE_TAGS = {"table", "caption", "thead", "tbody", "tfoot", "tr", "th", "td"}
# iframe: only allow-listed video players survive (their src is rewritten to the canonical
# player URL; any other src is removed, and then the iframe).
ALLOWED_TAGS: frozenset[str] = frozenset(
    _TEXT_TAGS | _BLOCK_TAGS | _TABLE_TAGS | {"a", "img", "iframe"}
)
ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    "a": {"href"},
    "img": {"src", "alt"},
    "iframe": {"src"},
    "th": {"colspan", "rowspan"},
    "td": {"colspan", "rowspan"},
}
# Elements whose content is dropped with them (code, styles, embedded documents, vector
# graphics that can carry handlers); other disallowed elements keep their text.
_CODE_TAGS = {"script", "style", "noscript", "template", "xml", "head", "title"}
_EMBED_TAGS = {"frame", "frameset", "object", "embed", "applet", "svg", "math"}
_MEDIA_FORM_TAGS = {"canvas", "audio", "video", "form", "select", "textarea", "button"}
DROP_WITH_CONTENT: frozenset[str] = frozenset(_CODE_TAGS | _EMBED_TAGS | _MEDIA_FORM_TAGS)
LINK_SCHEMES = frozenset({"http", "https", "mailto"})
IMAGE_SCHEMES = frozenset({"http", "https"})
LINK_REL = "noopener noreferrer nofollow"

# Legacy layout markup mapped onto the allow-list before sanitising, so paragraphs and the
# document outline survive (the page's own h1 is the title).
_RENAMES = {"div": "p", "h1": "h2", "center": "p"}
_RENAME_TAG = re.compile(r"<(/?)(div|h1|center)(?=[\s/>])[^>]*>", re.IGNORECASE)
_EMPTY_PARAGRAPH = re.compile(r"<p>(?:\s|&nbsp;|\u00a0|<br>)*</p>")
# nh3's output quotes attributes with '"' and escapes '>' inside them, so these are exact.
_IMG_WITHOUT_SRC = re.compile(r"<img(?![^>]*\ssrc=)[^>]*>")
_IFRAME = re.compile(r"<iframe([^>]*)>.*?</iframe>", re.DOTALL)
_LINK_WITHOUT_HREF = re.compile(r'<a rel="[^"]*">(.*?)</a>', re.DOTALL)
_TAG_OR_TEXT = re.compile(r'(<(?:[^>"]|"[^"]*")*>)')
_SPACES = re.compile(r"[ \t\r\f\v\u00a0\u200b]+")
# Characters XML 1.0 forbids, and DEL: left by no repair (legacy encodings are repaired first).
_CONTROL = re.compile("[^\t\n\r\u0020-\u007e\u0080-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_CHAR_REF = re.compile(r"&#(?:[xX]([0-9a-fA-F]{1,8})|([0-9]{1,10}));?")


def _drop_forbidden_ref(m: re.Match[str]) -> str:
    code = int(m.group(1), 16) if m.group(1) else int(m.group(2))
    return "" if code > 0x10FFFF or _CONTROL.match(chr(code)) else m.group(0)


def drop_forbidden_refs(raw: str) -> str:
    """``raw`` markup without numeric character references to characters XML forbids (an
    HTML parser would decode them to the character, or to U+FFFD for NUL and surrogates)."""
    return _CHAR_REF.sub(_drop_forbidden_ref, raw) if "&#" in raw else raw


def drop_control(raw: str) -> str:
    """``raw`` markup without the characters XML forbids, raw or as references. Only after
    the encoding repair: C0 bytes are letters in TCVN3 and VISCII."""
    return drop_forbidden_refs(_CONTROL.sub("", raw))


# --- findings -------------------------------------------------------------------------------


@dataclass
class Findings:
    """What the steps repaired and what they could not: becomes the QualityReport."""

    repairs: list[QualityIssue] = field(default_factory=list)
    issues: list[QualityIssue] = field(default_factory=list)

    def repaired(self, code: str, message: str) -> None:
        self.repairs.append(QualityIssue(code=code, message=message, needs_person=False))

    def issue(self, code: str, message: str, *, needs_person: bool = True) -> None:
        self.issues.append(QualityIssue(code=code, message=message, needs_person=needs_person))

    def report(self) -> QualityReport:
        return QualityReport(
            score=quality_score(self.repairs, self.issues),
            repairs=list(self.repairs),
            issues=list(self.issues),
        )


def quality_score(repairs: list[QualityIssue], issues: list[QualityIssue]) -> float:
    """1 is clean. A kind of problem for a person costs most (three missing images are one
    kind: the editor looks once); automatic repairs cost a little."""
    score = 1.0
    score -= 0.25 * len({i.code for i in issues if i.needs_person})
    score -= 0.1 * len({i.code for i in issues if not i.needs_person})
    score -= min(0.2, 0.05 * len({r.code for r in repairs}))
    return round(max(0.0, min(1.0, score)), 2)


# --- markup ---------------------------------------------------------------------------------


class _MarkupCensus(HTMLParser):
    """Counts what the sanitiser will remove, so the report can say what was repaired."""

    def __init__(self, base_url: str | None) -> None:
        super().__init__(convert_charrefs=True)
        self.base_url = base_url
        self.removed_elements: Counter[str] = Counter()
        self.removed_attributes: Counter[str] = Counter()
        self.unsafe_urls = 0
        self.videos = 0
        self.inline_images = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "iframe":
            if video_embed(dict(attrs).get("src") or "") is None:
                self.removed_elements["iframe"] += 1
            else:
                self.videos += 1
            return
        if tag not in ALLOWED_TAGS:
            self.removed_elements[tag] += 1
        if tag == "img" and (dict(attrs).get("src") or "").strip().lower().startswith("data:"):
            self.inline_images += 1
        allowed = ALLOWED_ATTRIBUTES.get(tag, set()) if tag in ALLOWED_TAGS else set()
        for name, value in attrs:
            if name.startswith("on"):
                self.removed_attributes["event handler"] += 1
            elif name not in allowed:
                self.removed_attributes[name] += 1
            elif (
                name in ("href", "src")
                and name in allowed
                and not _url_allowed(tag, value or "", base_url=self.base_url)
            ):
                self.unsafe_urls += 1

    handle_startendtag = handle_starttag


def _scheme(url: str) -> str:
    return urlsplit(url).scheme.lower()


def _url_allowed(tag: str, url: str, *, base_url: str | None) -> bool:
    url = url.strip()
    if not url:
        return False
    scheme = _scheme(url)
    if not scheme:
        return base_url is not None and not url.startswith("#")
    return scheme in (IMAGE_SCHEMES if tag == "img" else LINK_SCHEMES)


def _make_cleaner(base_url: str | None) -> nh3.Cleaner:
    def resolve_relative(url: str) -> str | None:
        # A partner's relative link points into its own site; without a base it is dead.
        if base_url is None or url.startswith("#"):
            return None
        return urljoin(base_url, url)

    def check_attribute(tag: str, name: str, value: str) -> str | None:
        # nh3 calls this after its own scheme check and before resolving relative URLs:
        # keep images to http/https (no mailto:), leave relative URLs to resolve_relative.
        if tag == "iframe":
            return video_embed(value) if name == "src" else None
        if name in ("href", "src"):
            scheme = _scheme(value)
            if not scheme:
                return value
            return value if scheme in (IMAGE_SCHEMES if tag == "img" else LINK_SCHEMES) else None
        if name == "alt":
            return normalize_text(value)
        if name in ("colspan", "rowspan"):
            return value if value.isdigit() and 0 < int(value) <= 100 else None
        return value

    return nh3.Cleaner(
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(DROP_WITH_CONTENT),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        attribute_filter=check_attribute,
        strip_comments=True,
        link_rel=LINK_REL,
        url_schemes=set(LINK_SCHEMES),
        url_relative=resolve_relative,
        generic_attribute_prefixes=set(),
    )


def _http_base(url: str | None) -> str | None:
    return url if url and _scheme(url) in ("http", "https") else None


def sanitize_html(raw: str, findings: Findings, *, base_url: str | None = None) -> str:
    """Safe HTML on the allow-list, with what was removed recorded in ``findings``."""
    raw = drop_control(raw)
    base = _http_base(base_url)
    census = _MarkupCensus(base)
    try:
        census.feed(raw)
        census.close()
    except Exception:  # noqa: S110 - the census only feeds the report; nh3 does the cleaning
        pass
    renamed = Counter(m.group(2).lower() for m in _RENAME_TAG.finditer(raw) if not m.group(1))
    prepared = _RENAME_TAG.sub(lambda m: f"<{m.group(1)}{_RENAMES[m.group(2).lower()]}>", raw)
    # The sanitiser decodes character references: what XML forbids goes after it, so no
    # feed, sitemap or page built from the article can be broken by one partner's text.
    cleaned = xml_safe(_make_cleaner(base).clean(prepared))
    # A link or image whose URL was removed is only clutter; a player keeps no content.
    cleaned = _IMG_WITHOUT_SRC.sub("", cleaned)
    cleaned = _IFRAME.sub(
        lambda m: f"<iframe{m.group(1)}></iframe>" if " src=" in m.group(1) else "", cleaned
    )
    cleaned = _LINK_WITHOUT_HREF.sub(r"\1", cleaned)
    cleaned = _EMPTY_PARAGRAPH.sub("", cleaned).strip()

    for tag in ("div", "h1", "center"):
        census.removed_elements.pop(tag, None)
    if census.removed_elements:
        findings.repaired(
            "markup_removed",
            f"disallowed elements removed: {_describe(census.removed_elements)}",
        )
    if census.removed_attributes:
        findings.repaired(
            "attributes_removed",
            f"disallowed attributes removed: {_describe(census.removed_attributes)}",
        )
    if census.unsafe_urls:
        findings.repaired(
            "unsafe_url_removed",
            f"unsafe or unresolvable link/image URLs removed: {census.unsafe_urls}",
        )
    if renamed:
        findings.repaired(
            "layout_mapped",
            f"layout markup mapped onto paragraphs and headings: {_describe(renamed)}",
        )
    if census.videos:
        findings.repaired("video_embedded", f"video players kept: {census.videos}")
    if census.inline_images:
        # Pictures pasted into the HTML itself (data: URLs) cannot be served safely as such.
        findings.issue(
            "image_inline_dropped",
            f"{census.inline_images} images embedded in the HTML (data: URLs) were dropped: "
            "the partner should send them as image files",
        )
    return cleaned


def _describe(counter: Counter[str], limit: int = 6) -> str:
    parts = [name if n == 1 else f"{name} x{n}" for name, n in counter.most_common(limit)]
    if len(counter) > limit:
        parts.append("...")
    return ", ".join(parts)


# --- text -----------------------------------------------------------------------------------


def normalize_text(text: str) -> str:
    """NFC with the portal's one tone-mark placement."""
    return normalize_tone_placement(text)


def normalize_html_text(safe_html: str) -> str:
    """Tone placement in text nodes only (never inside tags: URLs stay byte for byte)."""
    if not needs_tone_placement(safe_html):
        return safe_html  # clean NFC text with one tone placement already: nothing to do
    parts = _TAG_OR_TEXT.split(safe_html)
    return "".join(p if p.startswith("<") else normalize_text(p) for p in parts)


_BLOCKS = frozenset(ALLOWED_TAGS - {"br", "strong", "em", "b", "i", "u", "a", "img", "th", "td"})


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCKS:
            self.parts.append("\n\n")
        elif tag == "br":
            self.parts.append("\n")
        elif tag in ("td", "th"):
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _BLOCKS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_to_text(fragment: str) -> str:
    """Plain text of safe HTML: one paragraph per block, spaces collapsed."""
    parser = _TextExtractor()
    parser.feed(fragment)
    parser.close()
    text = "".join(parser.parts)
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return xml_safe(re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip())


def inline_text(raw: str) -> str:
    """One line of plain text from a field that may carry markup or entities (titles)."""
    text = html_to_text(
        nh3.clean(drop_control(raw), tags=set(), clean_content_tags={"script", "style"})
    )
    return normalize_text(_SPACES.sub(" ", text.replace("\n", " ")).strip())


def cut_at_word(text: str, limit: int = SUMMARY_CHARS) -> str:
    """At most ``limit`` characters ending at a word boundary, with an ellipsis if cut."""
    text = _SPACES.sub(" ", text.replace("\n", " ")).strip()
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut and not text[limit - 1].isspace():
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:.-–—") + "…"


# --- source rules -----------------------------------------------------------------------------


def category_key(name: str) -> str:
    """Categories match ignoring case, spacing, Unicode form and tone placement."""
    return " ".join(normalize_text(name).casefold().split())


_CATEGORY_PATH = re.compile(r"\s*[>/|»›]\s*")


@dataclass(frozen=True)
class SourceRules:
    """A source's rules, kept as data (admin API): its categories -> portal sections, its time
    zone, and the section for articles no category places."""

    categories: Mapping[str, str] = field(default_factory=dict)
    timezone: str = DEFAULT_TIMEZONE
    default_section: str | None = None

    def __post_init__(self) -> None:
        exact = {category_key(k): v for k, v in self.categories.items()}
        object.__setattr__(self, "_exact", exact)
        object.__setattr__(self, "_folded", {fold(k): v for k, v in exact.items()})

    def section_for(self, categories: list[str]) -> tuple[str, str] | None:
        """The section of the first category the mapping knows (exactly, then without
        diacritics; "Tin tức > Xây dựng Đảng" also tries its last part) and that category."""
        exact: dict[str, str] = getattr(self, "_exact")  # noqa: B009 - set in __post_init__
        folded: dict[str, str] = getattr(self, "_folded")  # noqa: B009
        for table, keyer in ((exact, category_key), (folded, lambda c: fold(category_key(c)))):
            for category in categories:
                parts = [category, *reversed(_CATEGORY_PATH.split(category))]
                for part in parts:
                    section = table.get(keyer(part))
                    if section:
                        return section, category
        return None

    def zone(self) -> tzinfo:
        try:
            return ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            return VIETNAM_TZ


NO_RULES = SourceRules()


def to_utc(moment: datetime | None, zone: tzinfo = VIETNAM_TZ) -> datetime | None:
    """A source time as UTC: a naive time is in the source's zone."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)


# --- the article before and after its images --------------------------------------------------


@dataclass(frozen=True)
class Normalized:
    article: NormalizedArticle
    quality: QualityReport


@dataclass(frozen=True)
class ImageCandidate:
    url: str
    caption: str | None
    listed: bool  # in the partner's image list (else only referenced by the body)


@dataclass(frozen=True)
class ImageOutcome:
    """What became of one image: stored (object key, size, renditions) or a failure."""

    url: str
    object_key: str | None = None
    width: int | None = None
    height: int | None = None
    renditions: Mapping[int, str] = field(default_factory=dict)
    code: str | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.object_key is not None


@dataclass
class Draft:
    """The article repaired and sanitised, its images listed but not yet fetched."""

    findings: Findings
    title: str
    summary: str
    author: str | None
    published_at: datetime | None
    canonical_url: str | None
    section: str | None
    categories: list[str]
    body_html: str
    body_text: str
    images: list[ImageCandidate]
    images_over_limit: int = 0


# --- metadata ---------------------------------------------------------------------------------

# "(ĐCSVN) - ", "TTXVN – ", "(Chinhphu.vn) — " at the start of a body: not summary material.
_DATELINE = re.compile(r"^\s*(?:\([^()\n]{2,40}\)|[A-ZĐ][A-ZĐ.]{2,20})\s*[-–—]\s+")
_AUTHOR_PREFIX = re.compile(
    r"^\s*(?:bài(?:,| và)? ảnh|tin(?:,| và)? ảnh|bài|tác giả|ảnh)\s*:\s*", re.IGNORECASE
)
_NAME_WORD = re.compile(r"^[A-ZĐÀ-Ỹ][\wÀ-ỹđĐ.'-]*$")


def clean_author(raw: str | None) -> str | None:
    if not raw:
        return None
    author = _AUTHOR_PREFIX.sub("", inline_text(raw)).strip(" -–—,;")
    return author or None


def _byline(root: lxml.html.HtmlElement) -> lxml.html.HtmlElement | None:
    """The body's last paragraph when it is a signature: a short name in bold or italics
    ("Minh Anh", "PV", "Theo TTXVN")."""
    blocks = [el for el in root if isinstance(el.tag, str)]
    if len(blocks) < 2 or blocks[-1].tag != "p":
        return None
    last = blocks[-1]
    children = list(last)
    if len(children) != 1 or (last.text or "").strip() or (children[0].tail or "").strip():
        return None
    if children[0].tag not in ("strong", "em") or len(children[0]):
        return None
    text = " ".join(last.text_content().split())
    words = text.removeprefix("Theo ").split()
    if not (1 <= len(words) <= 6 and len(text) <= 60):
        return None
    if not all(_NAME_WORD.match(w) for w in words):
        return None
    return last


def _generated_summary(body_html: str, body_text: str) -> str:
    """The first real paragraph (or the start of the text), cut at a word."""
    first = ""
    for para in body_text.split("\n\n"):
        if len(para) >= 80:
            first = para
            break
    text = _DATELINE.sub("", first or body_text)
    return cut_at_word(text)


# --- images in the body -----------------------------------------------------------------------


def _image_candidates(content: ArticleContent, root: lxml.html.HtmlElement) -> list[ImageCandidate]:
    """The partner's image list, then the body's images, once each."""
    seen: dict[str, ImageCandidate] = {}
    for ref in content.images:
        url = str(ref.url)
        if url not in seen:
            listed = ref.caption and xml_safe(
                normalize_text(repair_text(ref.caption, "image caption", RepairLog()))
            )
            seen[url] = ImageCandidate(url, (listed or "").strip() or None, listed=True)
    for img in root.iter("img"):
        url = img.get("src")
        if not url or url in seen:
            continue
        caption: str | None = None
        figure = img.getparent()
        while figure is not None and figure.tag not in ("figure", "div"):
            figure = figure.getparent()
        if figure is not None and figure.tag == "figure":
            captions = figure.findall("figcaption")
            if captions:
                caption = " ".join(captions[0].text_content().split()) or None
        seen[url] = ImageCandidate(url, caption or img.get("alt") or None, listed=False)
    return list(seen.values())


_FAILURE_KIND = {
    "refused_address": "image_refused",
    "refused_scheme": "image_refused",
    "refused_credentials": "image_refused",
    "bad_url": "image_refused",
    "not_an_image": "image_broken",
    "broken_image": "image_broken",
    "unsupported_format": "image_broken",
    "too_many_pixels": "image_broken",
    "over_budget": "image_broken",
}


def _sizes_attribute() -> str:
    return "(max-width: 768px) 100vw, 768px"


def rewrite_images(
    body_html: str, stored: Mapping[str, ImageOutcome], media_base_url: str
) -> tuple[str, int]:
    """The body with every image on the portal's stored copy (renditions in ``srcset``);
    images not stored are removed, with a figure or link left empty by that. Returns the body
    and how many images were removed."""
    if "<img" not in body_html:
        return body_html, 0
    root = lxml.html.fragment_fromstring(body_html, create_parent="div")
    removed = 0
    for img in list(root.iter("img")):
        outcome = stored.get(img.get("src") or "")
        if outcome is None or outcome.object_key is None:
            parent = img.getparent()
            img.drop_tree()
            removed += 1
            # A link or figure that only held the picture goes with it.
            while parent is not None and parent is not root and parent.tag in ("a", "figure"):
                if parent.xpath(".//img|.//iframe") or (
                    parent.tag == "a" and " ".join(parent.text_content().split())
                ):
                    break
                grand = parent.getparent()
                parent.drop_tree()
                parent = grand
            continue
        alt = img.get("alt")
        img.attrib.clear()
        img.set("src", media_base_url + outcome.object_key)
        if outcome.renditions:
            img.set(
                "srcset",
                ", ".join(
                    f"{media_base_url}{key} {width}w"
                    for width, key in sorted(outcome.renditions.items())
                ),
            )
            img.set("sizes", _sizes_attribute())
        if outcome.width and outcome.height:
            img.set("width", str(outcome.width))
            img.set("height", str(outcome.height))
        if alt:
            img.set("alt", alt)
        img.set("loading", "lazy")
        img.set("decoding", "async")
    out = (root.text or "") + "".join(lxml.html.tostring(c, encoding="unicode") for c in root)
    return out.strip(), removed


def choose_lead(candidates: list[ImageCandidate], stored: Mapping[str, ImageOutcome]) -> str | None:
    """The partner's first listed image that was stored, else the first body image big
    enough to lead (no icons, logos or banners)."""
    for c in candidates:
        if c.listed and (o := stored.get(c.url)) is not None and o.ok:
            return c.url
    for c in candidates:
        o = stored.get(c.url)
        if o is None or not o.ok or not o.width or not o.height:
            continue
        if o.width >= LEAD_MIN_WIDTH and 0.33 <= o.height / o.width <= 2.5:
            return c.url
    return None


# --- the whole article ------------------------------------------------------------------------


def prepare(
    content: ArticleContent,
    rules: SourceRules = NO_RULES,
    *,
    received_at: datetime | None = None,
    max_images: int = 40,
) -> Draft:
    """Every step that needs no network: text, markup, structure, metadata, image list."""
    findings = Findings()
    log = RepairLog()
    base_url = str(content.canonical_url) if content.canonical_url else None

    # 1. Encodings, before anything reads the text.
    def repaired(raw: str, place: str) -> str:
        return repair_html(drop_forbidden_refs(raw), place, log)

    raw_body = repaired(content.body_html, "body")
    raw_title = repaired(content.title, "title")
    raw_summary = repaired(content.summary, "summary") if content.summary else None
    raw_author = repaired(content.author, "author") if content.author else None
    raw_categories = [repaired(c, "categories") for c in content.categories]

    # 2. Markup: the allow-list, then one canonical structure.
    safe = sanitize_html(raw_body, findings, base_url=base_url)
    structured, reshaped = canonical_structure(safe)
    if reshaped:
        findings.repaired("structure_canonical", f"structure made canonical: {_describe(reshaped)}")

    # 3. NFC and one tone placement.
    body_html = normalize_html_text(structured)
    if body_html != structured:
        findings.repaired("text_normalized", "body normalised to NFC and one tone placement")

    # 4. Metadata.
    title = inline_text(raw_title)
    stripped_title = raw_title.strip()
    if title != stripped_title:
        if normalize_text(stripped_title) == title:
            findings.repaired("text_normalized", "title normalised to NFC and one tone placement")
        else:
            findings.repaired(
                "title_cleaned", "markup, entities or extra spaces removed from the title"
            )
    author = clean_author(raw_author)
    root = lxml.html.fragment_fromstring(body_html or "<p></p>", create_parent="div")
    if author is None and (byline := _byline(root)) is not None:
        author = " ".join(byline.text_content().split())
        byline.drop_tree()
        body_html = "".join(lxml.html.tostring(c, encoding="unicode") for c in root)
        findings.repaired("author_from_byline", f"author taken from the closing byline: {author}")
    body_text = html_to_text(body_html)

    summary = inline_text(raw_summary) if raw_summary else ""
    if not summary and body_text:
        summary = _generated_summary(body_html, body_text)
        findings.repaired("summary_generated", "no summary from the partner: taken from the body")

    categories = [c for c in (inline_text(c) for c in raw_categories) if c]
    section = content.section
    if section is None:
        mapped = rules.section_for(categories)
        if mapped is not None:
            section = mapped[0]
            findings.repaired(
                "section_mapped", f"section {section!r} from the category {mapped[1]!r}"
            )
        elif rules.default_section:
            section = rules.default_section
            findings.repaired("section_default", f"the source's default section {section!r}")

    zone = rules.zone()
    published_at = to_utc(content.published_at, zone)
    if published_at and received_at and published_at > received_at + timedelta(days=1):
        findings.issue(
            "published_in_future",
            f"published at {published_at.isoformat()} is after its arrival",
            needs_person=False,
        )

    for code, message in describe(log):
        findings.repaired(code, message)
    if log.unknown:
        samples = "; ".join(repr(s) for s in log.unknown_samples)
        where = ", ".join(log.unknown)
        findings.issue(
            "unknown_encoding",
            f"text that is neither Vietnamese nor a known encoding remains in {where}: {samples}",
        )
    if log.replacement_chars:
        total = sum(log.replacement_chars.values())
        findings.issue(
            "lost_characters",
            f"{total} characters were lost before the text reached us (shown as \ufffd) in "
            + ", ".join(log.replacement_chars),
        )

    candidates = _image_candidates(content, root)
    over = max(0, len(candidates) - max_images)
    assess(findings, content, title=title, body_text=body_text, summary=summary, section=section)
    return Draft(
        findings=findings,
        title=title,
        summary=summary,
        author=author,
        published_at=published_at,
        canonical_url=base_url,
        section=section,
        categories=categories,
        body_html=body_html,
        body_text=body_text,
        images=candidates[:max_images],
        images_over_limit=over,
    )


def finish(
    draft: Draft,
    outcomes: Mapping[str, ImageOutcome] | None = None,
    *,
    media_base_url: str = "/media/",
) -> Normalized:
    """The article on its stored images (``outcomes`` by URL; None: images were not fetched,
    the partner's URLs stay) with the lead image and the final quality report."""
    findings = Findings(list(draft.findings.repairs), list(draft.findings.issues))
    body_html, body_text = draft.body_html, draft.body_text
    images: list[MediaRef] = []
    lead_url: str | None
    if outcomes is None:
        images = [MediaRef(original_url=c.url, caption=c.caption) for c in draft.images]
        lead_url = draft.images[0].url if draft.images else None
    else:
        stored = {url: o for url, o in outcomes.items() if o.ok}
        for c in draft.images:
            o = stored.get(c.url)
            if o is None:
                continue
            images.append(
                MediaRef(
                    original_url=c.url,
                    object_key=o.object_key,
                    width=o.width,
                    height=o.height,
                    caption=c.caption,
                    renditions={str(w): key for w, key in sorted(o.renditions.items())},
                )
            )
        body_html, removed = rewrite_images(draft.body_html, stored, media_base_url)
        if removed:
            body_text = html_to_text(body_html)
        report_images(findings, draft, outcomes)
        lead_url = choose_lead(draft.images, stored)
    if not draft.images:
        findings.issue("no_image", "the article has no image", needs_person=False)
    lead = next((m for m in images if m.original_url == lead_url), None)
    article = NormalizedArticle(
        title=draft.title,
        summary=draft.summary,
        body_html=body_html,
        body_text=body_text,
        author=draft.author,
        published_at=draft.published_at,
        canonical_url=draft.canonical_url,
        section=draft.section,
        categories=draft.categories,
        images=images,
        lead_image=lead,
    )
    return Normalized(article=article, quality=findings.report())


def report_images(findings: Findings, draft: Draft, outcomes: Mapping[str, ImageOutcome]) -> None:
    """One line per image that failed, with its reason; one repair line for the stored ones."""
    stored = sum(1 for c in draft.images if (o := outcomes.get(c.url)) is not None and o.ok)
    if stored:
        findings.repaired(
            "images_stored", f"{stored} images fetched, cleaned of metadata and stored"
        )
    pixels = 0
    for c in draft.images:
        o = outcomes.get(c.url)
        if o is not None and o.ok:
            continue
        if o is None:
            findings.issue("image_missing", f"{c.url}: not fetched")
            continue
        if o.code == "too_small":
            pixels += 1
            continue
        kind = _FAILURE_KIND.get(o.code or "", "image_missing")
        findings.issue(kind, f"{c.url}: {o.reason or o.code}")
    if pixels:
        findings.repaired("tracking_pixel_removed", f"spacer or tracking images removed: {pixels}")
    if draft.images_over_limit:
        findings.issue(
            "too_many_images",
            f"{draft.images_over_limit} images over the limit were not fetched",
            needs_person=False,
        )


def normalize_content(
    content: ArticleContent,
    rules: SourceRules = NO_RULES,
    outcomes: Mapping[str, ImageOutcome] | None = None,
    *,
    media_base_url: str = "/media/",
) -> Normalized:
    return finish(prepare(content, rules), outcomes, media_base_url=media_base_url)


def assess(
    findings: Findings,
    content: ArticleContent,
    *,
    title: str,
    body_text: str,
    summary: str,
    section: str | None,
) -> None:
    """What an editor should look at (the report's issues); images are assessed in finish."""
    if not title:
        findings.issue("title_empty", "the title is empty after cleaning")
    elif len(title) > TITLE_MAX_CHARS:
        findings.issue(
            "title_too_long", f"the title has {len(title)} characters (over {TITLE_MAX_CHARS})"
        )
    elif len(title) > 20 and title == title.upper() and title != title.lower():
        findings.issue("title_all_caps", "the title is in capitals", needs_person=False)
    if not body_text:
        findings.issue("empty_body", "the body has no text")
    elif len(body_text) < SHORT_BODY_CHARS:
        findings.issue(
            "short_body", f"the body has only {len(body_text)} characters", needs_person=False
        )
    if section is None:
        findings.issue("no_section", "no portal section: the partner named none, no rule maps it")
    sample = body_text[:5000]
    if _letters_at_least(sample, 40) and not has_vietnamese_diacritics(sample):
        # Vietnamese without any diacritic: often a legacy font encoding or stripped text.
        findings.issue(
            "no_diacritics", "the text has no Vietnamese diacritics (encoding or font problem?)"
        )
    if content.published_at is None:
        findings.issue("no_published_at", "no publication time at the source", needs_person=False)
    if not summary:
        findings.issue("no_summary", "no summary and no body to take one from")


def _letters_at_least(text: str, n: int) -> bool:
    for c in text:
        if c.isalpha():
            n -= 1
            if n <= 0:
                return True
    return False


def normalized_data(
    ingested: ArticleIngested,
    rules: SourceRules = NO_RULES,
    outcomes: Mapping[str, ImageOutcome] | None = None,
    *,
    media_base_url: str = "/media/",
) -> ArticleNormalized:
    """The article.normalized payload for one ingested revision (upsert or retraction)."""
    if ingested.action is ArticleAction.RETRACT:
        return retraction_data(ingested)
    if ingested.content is None:
        raise NormalizeRefused("an upsert without content")
    draft = prepare(ingested.content, rules, received_at=ingested.received_at)
    return upsert_data(ingested, finish(draft, outcomes, media_base_url=media_base_url))


def _common(ingested: ArticleIngested) -> dict[str, object]:
    return {
        "article_id": ingested.article_id,
        "source": ingested.source,
        "external_id": ingested.external_id,
        "revision": ingested.revision,
        "action": ingested.action,
        "received_at": ingested.received_at,
        "raw_object_key": ingested.raw_object_key,
    }


def retraction_data(ingested: ArticleIngested) -> ArticleNormalized:
    return ArticleNormalized.model_validate(_common(ingested))


def upsert_data(
    ingested: ArticleIngested, result: Normalized, duplicate_of: str | None = None
) -> ArticleNormalized:
    return ArticleNormalized.model_validate(
        {
            **_common(ingested),
            "article": result.article,
            "quality": result.quality,
            "duplicate_of": duplicate_of,
        }
    )


class NormalizeRefused(ValueError):
    """The ingested event can never be normalised (a dead letter, with this reason)."""


def is_newer(incoming_revision: int, known_revision: int | None) -> bool:
    """Each stage keeps the newest revision: an equal or older one is a repeat or stale."""
    return known_revision is None or incoming_revision > known_revision
