"""Pieces every page uses: links, pictures, teasers and the few HTML fragments kept as markup."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import nh3
from markupsafe import Markup

MEDIA_PREFIX = "/media/"


ARTICLE_PREFIX = "/bai-viet/"


LEADER_KIND = "leader"


SUBSITE_KIND = "subsite-standard"


ENGAGEMENT_KIND = "engagement"


# The engagement block's sections are the website's own pages.
ENGAGEMENT_PATHS = {
    "hoi-dap": "/hoi-dap",
    "doi-thoai": "/doi-thoai",
    "gop-y": "/gop-y",
    "dien-dan": "/dien-dan",
}


SUBSITE_KIND_LABELS = {
    "central-party-body": "Các cơ quan Đảng Trung ương",
    "socio-political": "Mặt trận Tổ quốc và các tổ chức chính trị - xã hội",
    "ministry": "Bộ, ngành Trung ương",
    "province": "Tỉnh ủy, thành ủy",
}


# Answers (from the desk) are built from plain text; kept to these tags all the same.
_ANSWER_TAGS = {"p", "br", "strong", "em", "b", "i", "ul", "ol", "li", "a"}


@dataclass(frozen=True)
class Link:
    label: str
    href: str
    current: bool = False


@dataclass(frozen=True)
class Picture:
    src: str
    srcset: str
    sizes: str
    width: int | None
    height: int | None
    alt: str
    caption: str | None


@dataclass(frozen=True)
class Teaser:
    title: str
    href: str
    summary: str | None
    published: str
    published_iso: str
    section: Link | None
    subsite: Link | None
    picture: Picture | None


def media_url(key: str) -> str:
    return MEDIA_PREFIX + key.lstrip("/")


def picture(media: Mapping[str, Any] | None, *, alt: str, sizes: str) -> Picture | None:
    """The stored image with its WebP renditions as ``srcset`` (nothing when not stored)."""
    if not media:
        return None
    renditions: dict[str, str] = media.get("renditions") or {}
    widths = sorted((int(w), key) for w, key in renditions.items() if str(w).isdigit())
    key = media.get("object_key") or (widths[-1][1] if widths else None)
    if not key:
        return None
    width, height = media.get("width"), media.get("height")
    # The src is the rendition nearest a phone's width, for browsers without srcset.
    src_key = next((k for w, k in widths if w >= 640), widths[-1][1]) if widths else key
    caption = (media.get("caption") or "").strip() or None
    return Picture(
        src=media_url(src_key),
        srcset=", ".join(f"{media_url(k)} {w}w" for w, k in widths),
        sizes=sizes,
        width=width if isinstance(width, int) else None,
        height=height if isinstance(height, int) else None,
        alt=caption or alt,
        caption=caption,
    )


def article_href(item: Mapping[str, Any]) -> str:
    path = item.get("url_path") or ""
    if isinstance(path, str) and path.startswith(ARTICLE_PREFIX):
        return path
    return ARTICLE_PREFIX + str(item.get("slug", ""))


def plain_paragraphs(text: str) -> list[str]:
    """A reader's text as paragraphs (blank lines split them); the templates escape each."""
    return [p.strip() for p in text.replace("\r\n", "\n").split("\n\n") if p.strip()]


# Built once: ``nh3.clean`` with options builds its sanitiser anew at every call, several times
# the cost of cleaning a short answer or snippet.
_ANSWER_CLEANER = nh3.Cleaner(
    tags=_ANSWER_TAGS, attributes={"a": {"href"}}, link_rel="nofollow noopener"
)
_HIGHLIGHT_CLEANER = nh3.Cleaner(tags={"mark"}, attributes={})


def safe_answer(html: str | None) -> Markup | None:
    if not html:
        return None
    # cleaned by nh3 to a few inline and list tags
    return Markup(_ANSWER_CLEANER.clean(html))  # noqa: S704


def safe_highlight(fragment: str) -> Markup:
    """Search snippets: every character escaped by search except its <mark>; kept to that."""
    return Markup(_HIGHLIGHT_CLEANER.clean(fragment))  # noqa: S704
