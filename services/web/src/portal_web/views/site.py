"""The site's structure as pages need it: sections, subsites and their labels."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from portal_web import present
from portal_web.views.common import (
    ENGAGEMENT_PATHS,
    SUBSITE_KIND_LABELS,
    Link,
    Teaser,
    article_href,
    picture,
)

# --- the site's structure ---------------------------------------------------------------------


@dataclass(frozen=True)
class SectionInfo:
    code: str
    name: str
    kind: str
    block: str
    standard: bool


@dataclass(frozen=True)
class SubsiteInfo:
    code: str
    name: str
    kind: str


@dataclass
class Site:
    """GET /v1/site as lookups: names, links, the navigation."""

    blocks: list[dict[str, Any]]
    sections: dict[str, SectionInfo]
    subsites: dict[str, SubsiteInfo]
    standard_sections: list[str]

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> Site:
        sections = {
            s["code"]: SectionInfo(
                s["code"], s["name"], s["kind"], s.get("block", b["code"]), s.get("standard", False)
            )
            for b in data.get("blocks", [])
            for s in b.get("sections", [])
        }
        subsites = {
            s["code"]: SubsiteInfo(s["code"], s["name"], s.get("kind", ""))
            for s in data.get("subsites", [])
        }
        return cls(
            blocks=list(data.get("blocks", [])),
            sections=sections,
            subsites=subsites,
            standard_sections=list(data.get("standard_sections", [])),
        )

    def block_name(self, code: str) -> str:
        return next((b["name"] for b in self.blocks if b["code"] == code), code)

    def section_name(self, code: str | None) -> str:
        if not code:
            return ""
        info = self.sections.get(code)
        return info.name if info else code

    def subsite_name(self, code: str | None) -> str:
        if not code:
            return ""
        info = self.subsites.get(code)
        return info.name if info else code

    def section_href(self, code: str) -> str:
        return ENGAGEMENT_PATHS.get(code) or f"/chuyen-muc/{code}"

    def nav(self, active: str | None) -> list[Link]:
        links = [Link("Trang chủ", "/", active == "home")]
        for kind in ("news", "documents"):
            links += [
                Link(s.name, self.section_href(s.code), active == f"section:{s.code}")
                for s in self.sections.values()
                if s.kind == kind
            ]
        links.append(Link("Chuyên trang", "/chuyen-trang", active == "subsites"))
        for code, label in (
            ("hoi-dap", "Hỏi đáp"),
            ("doi-thoai", "Đối thoại"),
            ("gop-y", "Góp ý"),
            ("dien-dan", "Diễn đàn"),
        ):
            links.append(Link(label, ENGAGEMENT_PATHS[code], active == code))
        return links

    def subsites_by_kind(self) -> list[tuple[str, list[SubsiteInfo]]]:
        groups: dict[str, list[SubsiteInfo]] = {}
        for sub in self.subsites.values():
            groups.setdefault(sub.kind, []).append(sub)
        order = list(SUBSITE_KIND_LABELS)
        ranked = sorted(groups, key=lambda k: (order.index(k) if k in order else len(order), k))
        return [(SUBSITE_KIND_LABELS.get(k, k), groups[k]) for k in ranked]

    def teaser(
        self, item: Mapping[str, Any], *, sizes: str = "(max-width: 640px) 100vw, 320px"
    ) -> Teaser:
        section = item.get("section")
        subsite = item.get("subsite")
        return Teaser(
            title=item.get("title", ""),
            href=article_href(item),
            summary=item.get("summary") or None,
            published=present.time_vn(item.get("published_at")),
            published_iso=present.iso(item.get("published_at")),
            section=Link(section["name"], self.section_href(section["code"])) if section else None,
            subsite=Link(subsite["name"], f"/chuyen-trang/{subsite['code']}") if subsite else None,
            picture=picture(item.get("lead_image"), alt=item.get("title", ""), sizes=sizes),
        )
