"""An article's images: which to fetch, the body rewritten to the stored copies, the lead image, and the failures reported."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import lxml.html

from portal_contracts.articles import (
    ArticleContent,
)
from portal_normalize.plain_text import normalize_text
from portal_normalize.structure import parse_fragment
from portal_normalize.text_repair import RepairLog, repair_text
from portal_text import (
    xml_safe,
)

LEAD_MIN_WIDTH = 300  # narrower body images are icons or logos, not a lead picture


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


# --- images in the body -----------------------------------------------------------------------


def image_candidates(content: ArticleContent, root: lxml.html.HtmlElement) -> list[ImageCandidate]:
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


FAILURE_KIND = {
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
    root = parse_fragment(body_html)
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
