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
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import lxml.html

from portal_contracts.articles import (
    ArticleAction,
    ArticleContent,
    ArticleIngested,
    ArticleNormalized,
    MediaRef,
    NormalizedArticle,
    QualityReport,
)
from portal_contracts.topics import MAX_MESSAGE_BYTES
from portal_normalize.article_images import (
    FAILURE_KIND,
    ImageCandidate,
    choose_lead,
    image_candidates,
    rewrite_images,
)
from portal_normalize.article_images import ImageOutcome as ImageOutcome
from portal_normalize.findings import Findings as Findings
from portal_normalize.markup_rules import ALLOWED_ATTRIBUTES as ALLOWED_ATTRIBUTES
from portal_normalize.markup_rules import ALLOWED_TAGS as ALLOWED_TAGS
from portal_normalize.markup_rules import drop_forbidden_refs
from portal_normalize.plain_text import cut_at_word as cut_at_word
from portal_normalize.plain_text import html_to_text as html_to_text
from portal_normalize.plain_text import (
    inline_text,
    normalize_html_text,
    normalize_text,
    tree_to_text,
)
from portal_normalize.sanitize import describe_counts
from portal_normalize.sanitize import sanitize_html as sanitize_html
from portal_normalize.structure import canonical_tree, inner_html, parse_fragment
from portal_normalize.text_repair import RepairLog, describe, repair_html
from portal_text import (
    fold,
    has_vietnamese_diacritics,
)

DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"


# Naive source times are Vietnamese local time (UTC+7, no daylight saving) by default.
VIETNAM_TZ = timezone(timedelta(hours=7), DEFAULT_TIMEZONE)


TITLE_MAX_CHARS = 200


SHORT_BODY_CHARS = 200


# Below the portal's Kafka message limit: a bigger event would block the outbox relay.
MAX_EVENT_BYTES = MAX_MESSAGE_BYTES - 64 * 1024


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


# --- the whole article ------------------------------------------------------------------------


def _safe_body(
    raw_body: str, base_url: str | None, findings: Findings
) -> tuple[str, lxml.html.HtmlElement, bool]:
    """The body through the allow-list, in one canonical structure, NFC with one tone
    placement; its tree (in a ``div``), read by the metadata and image steps; and whether the
    body is that tree serialised (``inner_html``, stripped), not parsed back from it."""
    safe = sanitize_html(raw_body, findings, base_url=base_url)
    structured, reshaped, tree = canonical_tree(safe)
    if reshaped:
        findings.repaired(
            "structure_canonical", f"structure made canonical: {describe_counts(reshaped)}"
        )
    body_html = normalize_html_text(structured)
    if body_html != structured:
        findings.repaired("text_normalized", "body normalised to NFC and one tone placement")
        tree = None  # its text is the old one
    if tree is None:
        return body_html, parse_fragment(body_html or "<p></p>"), False
    return body_html, tree, True


def _without_byline(
    root: lxml.html.HtmlElement, byline: lxml.html.HtmlElement, body_html: str, serialised: bool
) -> str:
    """The body with its closing byline dropped from ``root``: ``inner_html(root)`` after.

    When ``body_html`` is ``root`` serialised and the byline is its last node with nothing
    after it, that is ``body_html`` without the byline's own markup at its end (the tree is not
    serialised again)."""
    last = serialised and not root.text and byline.tail is None and byline.getnext() is None
    own = lxml.html.tostring(byline, encoding="unicode") if last else ""
    byline.drop_tree()
    root.text = None  # the body is its blocks (the structure left no loose text)
    if own and body_html.endswith(own):
        return body_html[: -len(own)]
    return inner_html(root)


def _clean_title(raw_title: str, findings: Findings) -> str:
    """The title as one line of plain text, with what changed reported."""
    title = inline_text(raw_title)
    stripped_title = raw_title.strip()
    if title != stripped_title:
        if normalize_text(stripped_title) == title:
            findings.repaired("text_normalized", "title normalised to NFC and one tone placement")
        else:
            findings.repaired(
                "title_cleaned", "markup, entities or extra spaces removed from the title"
            )
    return title


def _section(
    section: str | None, categories: list[str], rules: SourceRules, findings: Findings
) -> str | None:
    """The partner's section, else the one its categories map to, else the source's default."""
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
    return section


def _report_text_repair(log: RepairLog, findings: Findings) -> None:
    """What the encoding repair fixed, and what it could not."""
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

    # 2. Markup: the allow-list, then one canonical structure; 3. NFC and one tone placement.
    body_html, root, serialised = _safe_body(raw_body, base_url, findings)

    # 4. Metadata.
    title = _clean_title(raw_title, findings)
    author = clean_author(raw_author)
    if author is None and (byline := _byline(root)) is not None:
        author = " ".join(byline.text_content().split())
        body_html = _without_byline(root, byline, body_html, serialised)
        findings.repaired("author_from_byline", f"author taken from the closing byline: {author}")
    body_text = tree_to_text(root) if body_html else ""

    summary = inline_text(raw_summary) if raw_summary else ""
    if not summary and body_text:
        summary = _generated_summary(body_html, body_text)
        findings.repaired("summary_generated", "no summary from the partner: taken from the body")

    categories = [c for c in (inline_text(c) for c in raw_categories) if c]
    section = _section(content.section, categories, rules, findings)

    zone = rules.zone()
    published_at = to_utc(content.published_at, zone)
    if published_at and received_at and published_at > received_at + timedelta(days=1):
        findings.issue(
            "published_in_future",
            f"published at {published_at.isoformat()} is after its arrival",
            needs_person=False,
        )

    _report_text_repair(log, findings)

    candidates = image_candidates(content, root)
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
        kind = FAILURE_KIND.get(o.code or "", "image_missing")
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
        "raw_byte_range": ingested.raw_byte_range,  # its part of that object (a pack)
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
