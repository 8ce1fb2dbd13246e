"""Partner markup made safe to publish with nh3: what was removed or renamed is reported."""

from __future__ import annotations

import contextlib
import re
import threading
from collections import Counter
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import nh3

from portal_normalize import simple_html
from portal_normalize.findings import Findings
from portal_normalize.markup_rules import (
    ALLOWED_ATTRIBUTES,
    ALLOWED_TAGS,
    DROP_WITH_CONTENT,
    IMAGE_SCHEMES,
    LINK_REL,
    LINK_SCHEMES,
    drop_control,
)
from portal_normalize.plain_text import normalize_text
from portal_normalize.structure import video_embed
from portal_text import (
    xml_safe,
)

# Legacy layout markup mapped onto the allow-list before sanitising, so paragraphs and the
# document outline survive (the page's own h1 is the title).
_RENAMES = {"div": "p", "h1": "h2", "center": "p"}


_RENAME_TAG = re.compile(r"<(/?)(div|h1|center)(?=[\s/>])[^>]*>", re.IGNORECASE)


_EMPTY_PARAGRAPH = re.compile(r"<p>(?:\s|&nbsp;|\u00a0|<br>)*</p>")


# nh3's output quotes attributes with '"' and escapes '>' inside them, so these are exact.
_IMG_WITHOUT_SRC = re.compile(r"<img(?![^>]*\ssrc=)[^>]*>")


_IFRAME = re.compile(r"<iframe([^>]*)>.*?</iframe>", re.DOTALL)


_LINK_WITHOUT_HREF = re.compile(r'<a rel="[^"]*">(.*?)</a>', re.DOTALL)


# --- markup ---------------------------------------------------------------------------------


class _MarkupCensus(HTMLParser):
    """Counts what the sanitiser will remove, so the report can say what was repaired (from
    the start tags alone)."""

    def __init__(self, base_url: str | None) -> None:
        super().__init__(convert_charrefs=True)
        self.base_url = base_url  # only whether there is one counts (``_url_allowed``)
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


# What one start tag adds to a census: the elements and the attributes removed (one name each
# time), unsafe URLs, videos, inline images.
_TagCensus = tuple[tuple[str, ...], tuple[str, ...], int, int, int]

# A stand-in base URL: a census only asks whether there is one.
_SOME_BASE = "http://base.invalid/"


def _tag_census(tag: str, has_base: bool) -> _TagCensus:
    """The census of one start tag's text (``simple_html.start_tags``)."""
    census = _MarkupCensus(_SOME_BASE if has_base else None)
    simple_html.feed(census, tag, start_tags_only=True)
    return (
        tuple(census.removed_elements.elements()),
        tuple(census.removed_attributes.elements()),
        census.unsafe_urls,
        census.videos,
        census.inline_images,
    )


# Markup repeats its tags ("<p>", '<p style="...">'): each tag's census by its text, with and
# without a base URL; tags longer than ``_LONGEST_TAG`` are not kept (their memory), and the
# memo is emptied when it grows past ``_TAGS_KEPT``.
_TAG_CENSUSES: dict[bool, dict[str, _TagCensus]] = {False: {}, True: {}}
_TAGS_KEPT = 4096
_LONGEST_TAG = 256


def _census(raw: str, base_url: str | None) -> _MarkupCensus:
    """What the sanitiser will remove from ``raw``: simple markup tag by tag, each distinct
    tag counted once and remembered; other markup by html.parser. Only feeds the report:
    counting stops at a tag it cannot read (nh3 cleans whatever it is)."""
    census = _MarkupCensus(base_url)
    tags = simple_html.start_tags(raw)
    if tags is None:
        with contextlib.suppress(Exception):
            simple_html.feed(census, raw, start_tags_only=True)
        return census
    has_base = base_url is not None
    memo = _TAG_CENSUSES[has_base]
    elements, attributes = census.removed_elements, census.removed_attributes
    for tag in tags:
        counted = memo.get(tag)
        if counted is None:
            try:
                counted = _tag_census(tag, has_base)
            except Exception:
                break
            if len(tag) <= _LONGEST_TAG:
                if len(memo) >= _TAGS_KEPT:
                    memo.clear()
                memo[tag] = counted
        removed_elements, removed_attributes, unsafe_urls, videos, inline_images = counted
        for name in removed_elements:
            elements[name] += 1
        for name in removed_attributes:
            attributes[name] += 1
        census.unsafe_urls += unsafe_urls
        census.videos += videos
        census.inline_images += inline_images
    return census


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


# The article being cleaned in this thread: its base URL, for relative links. One cleaner
# serves every article (building one costs more than cleaning a 5 KB body), so what differs per
# article is read from here rather than captured.
_current = threading.local()


def _resolve_relative(url: str) -> str | None:
    # A partner's relative link points into its own site; without a base it is dead.
    base_url: str | None = getattr(_current, "base_url", None)
    if base_url is None or url.startswith("#"):
        return None
    return urljoin(base_url, url)


def _check_attribute(tag: str, name: str, value: str) -> str | None:
    # nh3 calls this after its own scheme check and before resolving relative URLs:
    # keep images to http/https (no mailto:), leave relative URLs to _resolve_relative.
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


_CLEANER = nh3.Cleaner(
    tags=set(ALLOWED_TAGS),
    clean_content_tags=set(DROP_WITH_CONTENT),
    attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
    attribute_filter=_check_attribute,
    strip_comments=True,
    link_rel=LINK_REL,
    url_schemes=set(LINK_SCHEMES),
    url_relative=_resolve_relative,
    generic_attribute_prefixes=set(),
)


def _clean(html: str, base_url: str | None) -> str:
    """``html`` through the allow-list, relative URLs resolved against ``base_url``."""
    _current.base_url = base_url
    try:
        return _CLEANER.clean(html)
    finally:
        _current.base_url = None


def _http_base(url: str | None) -> str | None:
    return url if url and _scheme(url) in ("http", "https") else None


def sanitize_html(raw: str, findings: Findings, *, base_url: str | None = None) -> str:
    """Safe HTML on the allow-list, with what was removed recorded in ``findings``."""
    raw = drop_control(raw)
    base = _http_base(base_url)
    census = _census(raw, base)
    renamed = Counter(m.group(2).lower() for m in _RENAME_TAG.finditer(raw) if not m.group(1))
    prepared = _RENAME_TAG.sub(lambda m: f"<{m.group(1)}{_RENAMES[m.group(2).lower()]}>", raw)
    # The sanitiser decodes character references: what XML forbids goes after it, so no
    # feed, sitemap or page built from the article can be broken by one partner's text.
    cleaned = xml_safe(_clean(prepared, base))
    # A link or image whose URL was removed is only clutter; a player keeps no content.
    # (Each pattern starts with its tag: markup without the tag skips the scan.)
    if "<img" in cleaned:
        cleaned = _IMG_WITHOUT_SRC.sub("", cleaned)
    if "<iframe" in cleaned:
        cleaned = _IFRAME.sub(
            lambda m: f"<iframe{m.group(1)}></iframe>" if " src=" in m.group(1) else "", cleaned
        )
    if '<a rel="' in cleaned:
        cleaned = _LINK_WITHOUT_HREF.sub(r"\1", cleaned)
    cleaned = _EMPTY_PARAGRAPH.sub("", cleaned).strip()

    for tag in ("div", "h1", "center"):
        census.removed_elements.pop(tag, None)
    if census.removed_elements:
        findings.repaired(
            "markup_removed",
            f"disallowed elements removed: {describe_counts(census.removed_elements)}",
        )
    if census.removed_attributes:
        findings.repaired(
            "attributes_removed",
            f"disallowed attributes removed: {describe_counts(census.removed_attributes)}",
        )
    if census.unsafe_urls:
        findings.repaired(
            "unsafe_url_removed",
            f"unsafe or unresolvable link/image URLs removed: {census.unsafe_urls}",
        )
    if renamed:
        findings.repaired(
            "layout_mapped",
            f"layout markup mapped onto paragraphs and headings: {describe_counts(renamed)}",
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


def describe_counts(counter: Counter[str], limit: int = 6) -> str:
    parts = [name if n == 1 else f"{name} x{n}" for name, n in counter.most_common(limit)]
    if len(counter) > limit:
        parts.append("...")
    return ", ".join(parts)
