"""The home page: its blocks of headlines, leaders, subsites and engagement."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from portal_web.views.common import ENGAGEMENT_KIND, LEADER_KIND, SUBSITE_KIND, Link, Teaser
from portal_web.views.engagement import DialogueView, DocumentView, PostView, QuestionView
from portal_web.views.site import Site

# --- the home page ----------------------------------------------------------------------------


@dataclass(frozen=True)
class BlockView:
    code: str
    name: str
    sections: list[Link]
    teasers: list[Teaser]


@dataclass(frozen=True)
class LeaderView:
    name: str
    href: str
    teasers: list[Teaser]


@dataclass
class EngagementBlock:
    """The engagement block of the home page; None where engagement did not answer."""

    questions: list[QuestionView] | None = None
    dialogues: list[DialogueView] | None = None
    documents: list[DocumentView] | None = None
    threads: list[PostView] | None = None


@dataclass
class HomeView:
    lead: Teaser | None
    headlines: list[Teaser]
    blocks: list[BlockView]
    leaders: list[LeaderView]
    subsites: BlockView | None
    engagement: EngagementBlock
    keys: list[str]


HEADLINES = 4


def _is_subsite_block(block: Mapping[str, Any]) -> bool:
    sections = block.get("sections") or []
    return bool(sections) and all(s.get("kind") == SUBSITE_KIND for s in sections)


def _is_engagement_block(block: Mapping[str, Any]) -> bool:
    sections = block.get("sections") or []
    return bool(sections) and all(s.get("kind") == ENGAGEMENT_KIND for s in sections)


def home_view(site: Site, home: Mapping[str, Any], engagement: EngagementBlock) -> HomeView:
    blocks: list[BlockView] = []
    subsites: BlockView | None = None
    lead: Teaser | None = None
    headlines: list[Teaser] = []
    for block in home.get("blocks", []):
        if _is_engagement_block(block):
            continue
        teasers = [site.teaser(a) for a in block.get("articles", [])]
        view = BlockView(
            code=block["code"],
            name=block["name"],
            sections=[
                Link(s["name"], site.section_href(s["code"]))
                for s in block.get("sections", [])
                if s.get("kind") != LEADER_KIND
            ],
            teasers=teasers,
        )
        if _is_subsite_block(block):
            subsites = view
            continue
        if lead is None and teasers:
            # The portal's lead story: the newest of the first block, with a picture if any.
            lead = next((t for t in teasers if t.picture), teasers[0])
            view = BlockView(
                view.code, view.name, view.sections, [t for t in teasers if t is not lead]
            )
        blocks.append(view)
    leaders = [
        LeaderView(
            name=page["section"]["name"],
            href=site.section_href(page["section"]["code"]),
            teasers=[site.teaser(a) for a in page.get("articles", [])[:3]],
        )
        for page in home.get("leaders", [])
    ]
    keys = ["home", "site", "qa", "forum"]
    keys += [f"dialogue:{d.code}" for d in engagement.dialogues or []]
    keys += [f"feedback:{d.code}" for d in engagement.documents or []]
    return HomeView(lead, headlines, blocks, leaders, subsites, engagement, keys)
