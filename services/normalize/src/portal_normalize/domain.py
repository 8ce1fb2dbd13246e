"""Normalisation of a partner article: pure logic, no I/O.

The first cut repairs markup and text:
* body HTML sanitised to a small allow-list (nh3, the Rust ammonia sanitiser): nothing
  executable survives, links get ``rel="noopener noreferrer nofollow"``, URLs are http/https
  (and mailto for links), relative URLs are resolved against the article's canonical URL;
* text in NFC with one tone-mark placement ("hoà" -> "hòa");
* a plain-text body, a summary (the partner's, else the start of the text cut at a word);
* a quality report: what was repaired, what an editor should look at, and a score.

``normalize_content`` runs the steps in order on a ``Findings`` collector. The later repairs
(legacy Vietnamese encodings and fonts, images into object storage) slot in as more steps:
an encoding step before ``sanitize_html`` on the raw strings, an image step that replaces
``collect_images`` and fills ``MediaRef.object_key``/renditions.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

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
from portal_text import has_vietnamese_diacritics, normalize_tone_placement

# Naive source times are Vietnamese local time (UTC+7, no daylight saving).
VIETNAM_TZ = timezone(timedelta(hours=7), "Asia/Ho_Chi_Minh")

SUMMARY_CHARS = 300
TITLE_MAX_CHARS = 200
SHORT_BODY_CHARS = 200
# Below the portal's Kafka message limit: a bigger event would block the outbox relay.
MAX_EVENT_BYTES = MAX_MESSAGE_BYTES - 64 * 1024

# --- the allow-list -------------------------------------------------------------------------

_TEXT_TAGS = {"h2", "h3", "h4", "h5", "h6", "p", "br", "strong", "em", "b", "i", "u"}
_BLOCK_TAGS = {"blockquote", "ul", "ol", "li", "figure", "figcaption"}
_TABLE_TAGS = {"table", "caption", "thead", "tbody", "tfoot", "tr", "th", "td"}
ALLOWED_TAGS: frozenset[str] = frozenset(_TEXT_TAGS | _BLOCK_TAGS | _TABLE_TAGS | {"a", "img"})
ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    "a": {"href"},
    "img": {"src", "alt"},
    "th": {"colspan", "rowspan"},
    "td": {"colspan", "rowspan"},
}
# Elements whose content is dropped with them (code, styles, embedded documents, vector
# graphics that can carry handlers); other disallowed elements keep their text.
_CODE_TAGS = {"script", "style", "noscript", "template", "xml", "head", "title"}
_EMBED_TAGS = {"iframe", "frame", "frameset", "object", "embed", "applet", "svg", "math"}
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
_LINK_WITHOUT_HREF = re.compile(r'<a rel="[^"]*">(.*?)</a>', re.DOTALL)
_TAG_OR_TEXT = re.compile(r'(<(?:[^>"]|"[^"]*")*>)')
_SPACES = re.compile(r"[ \t\r\f\v\u00a0\u200b]+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


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
    """1 is clean. An issue for a person costs most; automatic repairs cost a little."""
    score = 1.0
    score -= 0.25 * sum(1 for i in issues if i.needs_person)
    score -= 0.1 * sum(1 for i in issues if not i.needs_person)
    score -= min(0.2, 0.05 * len(repairs))
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

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED_TAGS:
            self.removed_elements[tag] += 1
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
    raw = _CONTROL.sub("", raw)
    base = _http_base(base_url)
    census = _MarkupCensus(base)
    try:
        census.feed(raw)
        census.close()
    except Exception:  # noqa: S110 - the census only feeds the report; nh3 does the cleaning
        pass
    renamed = Counter(m.group(2).lower() for m in _RENAME_TAG.finditer(raw) if not m.group(1))
    prepared = _RENAME_TAG.sub(lambda m: f"<{m.group(1)}{_RENAMES[m.group(2).lower()]}>", raw)
    cleaned = _make_cleaner(base).clean(prepared)
    # A link or image whose URL was removed is only clutter.
    cleaned = _IMG_WITHOUT_SRC.sub("", cleaned)
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
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip()


def inline_text(raw: str) -> str:
    """One line of plain text from a field that may carry markup or entities (titles)."""
    text = html_to_text(
        nh3.clean(_CONTROL.sub("", raw), tags=set(), clean_content_tags={"script", "style"})
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


# --- the whole article ----------------------------------------------------------------------


@dataclass(frozen=True)
class Normalized:
    article: NormalizedArticle
    quality: QualityReport


class _ImageCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.images: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            found = dict(attrs)
            if found.get("src"):
                self.images.append((str(found["src"]), found.get("alt") or None))

    handle_startendtag = handle_starttag


def collect_images(content: ArticleContent, safe_html: str) -> list[MediaRef]:
    """The partner's image list, then the body's images, once each (storage comes later)."""
    seen: set[str] = set()
    images: list[MediaRef] = []
    for ref in content.images:
        url = str(ref.url)
        if url not in seen:
            seen.add(url)
            caption = normalize_text(ref.caption) if ref.caption else None
            images.append(MediaRef(original_url=url, caption=caption))
    collector = _ImageCollector()
    collector.feed(safe_html)
    for url, alt in collector.images:
        if url not in seen:
            seen.add(url)
            images.append(MediaRef(original_url=url, caption=alt))
    return images


def to_utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=VIETNAM_TZ)
    return moment.astimezone(UTC)


def normalize_content(content: ArticleContent) -> Normalized:
    findings = Findings()
    base_url = str(content.canonical_url) if content.canonical_url else None

    safe = sanitize_html(content.body_html, findings, base_url=base_url)
    body_html = normalize_html_text(safe)
    body_text = html_to_text(body_html)

    title = inline_text(content.title)
    raw_title = content.title.strip()
    if title != raw_title:
        if normalize_text(raw_title) == title:
            findings.repaired("text_normalized", "title normalised to NFC and one tone placement")
        else:
            findings.repaired(
                "title_cleaned", "markup, entities or extra spaces removed from the title"
            )
    if body_html != safe:
        findings.repaired("text_normalized", "body normalised to NFC and one tone placement")

    summary = inline_text(content.summary) if content.summary else ""
    if not summary and body_text:
        summary = cut_at_word(body_text)
        findings.repaired("summary_generated", "no summary from the partner: taken from the body")

    images = collect_images(content, body_html)
    assess(findings, content, title=title, body_text=body_text, summary=summary, images=images)

    article = NormalizedArticle(
        title=title,
        summary=summary,
        body_html=body_html,
        body_text=body_text,
        author=(inline_text(content.author) or None) if content.author else None,
        published_at=to_utc(content.published_at),
        canonical_url=base_url,
        section=content.section,
        categories=[c for c in (inline_text(c) for c in content.categories) if c],
        images=images,
        lead_image=images[0] if images else None,
    )
    return Normalized(article=article, quality=findings.report())


def assess(
    findings: Findings,
    content: ArticleContent,
    *,
    title: str,
    body_text: str,
    summary: str,
    images: list[MediaRef],
) -> None:
    """What an editor should look at (the report's issues)."""
    if not title:
        findings.issue("title_empty", "the title is empty after cleaning")
    elif len(title) > TITLE_MAX_CHARS:
        findings.issue(
            "title_too_long", f"the title has {len(title)} characters (over {TITLE_MAX_CHARS})"
        )
    if not body_text:
        findings.issue("empty_body", "the body has no text")
    elif len(body_text) < SHORT_BODY_CHARS:
        findings.issue(
            "short_body", f"the body has only {len(body_text)} characters", needs_person=False
        )
    if content.section is None:
        findings.issue("no_section", "the partner named no portal section")
    sample = body_text[:5000]
    if sum(c.isalpha() for c in sample) >= 40 and not has_vietnamese_diacritics(sample):
        # Vietnamese without any diacritic: often a legacy font encoding or stripped text.
        findings.issue(
            "no_diacritics", "the text has no Vietnamese diacritics (encoding or font problem?)"
        )
    if not images:
        findings.issue("no_image", "the article has no image", needs_person=False)
    if content.published_at is None:
        findings.issue("no_published_at", "no publication time at the source", needs_person=False)
    if not summary:
        findings.issue("no_summary", "no summary and no body to take one from")


def normalized_data(ingested: ArticleIngested) -> ArticleNormalized:
    """The article.normalized payload for one ingested revision (upsert or retraction)."""
    common = {
        "article_id": ingested.article_id,
        "source": ingested.source,
        "external_id": ingested.external_id,
        "revision": ingested.revision,
        "action": ingested.action,
        "received_at": ingested.received_at,
        "raw_object_key": ingested.raw_object_key,
    }
    if ingested.action is ArticleAction.RETRACT:
        return ArticleNormalized.model_validate(common)
    if ingested.content is None:
        raise NormalizeRefused("an upsert without content")
    result = normalize_content(ingested.content)
    return ArticleNormalized.model_validate(
        {**common, "article": result.article, "quality": result.quality}
    )


class NormalizeRefused(ValueError):
    """The ingested event can never be normalised (a dead letter, with this reason)."""


def is_newer(incoming_revision: int, known_revision: int | None) -> bool:
    """Each stage keeps the newest revision: an equal or older one is a repeat or stale."""
    return known_revision is None or incoming_revision > known_revision
