"""Request and response models of the admin and public APIs (the OpenAPI document)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from portal_contracts.articles import MediaRef
from portal_runtime.problems import NulFree

Code = Annotated[
    str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$", examples=["xyz"])
]
Kind = Annotated[
    str, Field(min_length=1, max_length=32, pattern=r"^[a-z][a-z0-9-]*$", examples=["news"])
]
Name = Annotated[str, Field(min_length=1, max_length=200)]


class _In(NulFree):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# --- Admin: the site structure -------------------------------------------------------------------


class SectionIn(_In):
    code: Code
    name: Name
    kind: Kind


class BlockIn(_In):
    code: Code
    name: Name
    sections: list[SectionIn] = Field(default_factory=list, max_length=300)


class SubsiteIn(_In):
    code: Code
    name: Name
    kind: Kind


class SiteIn(_In):
    """The whole site structure (deploy/seed/site.yaml plus the sub-sites of sources.yaml)."""

    version: int | None = Field(default=None, description="Version of the seed file; ignored.")
    blocks: list[BlockIn] = Field(min_length=1, max_length=50)
    standard_sections: list[Code] = Field(
        default_factory=list,
        max_length=50,
        description="Section codes every sub-site has; each must be a section of a block.",
    )
    subsites: list[SubsiteIn] = Field(default_factory=list, max_length=2000)

    @model_validator(mode="after")
    def _consistent(self) -> SiteIn:
        blocks = [b.code for b in self.blocks]
        if dup := _first_duplicate(blocks):
            raise ValueError(f"blocks: block code {dup!r} appears twice")
        sections = [s.code for b in self.blocks for s in b.sections]
        if dup := _first_duplicate(sections):
            raise ValueError(f"blocks.sections: section code {dup!r} appears twice")
        if dup := _first_duplicate([s.code for s in self.subsites]):
            raise ValueError(f"subsites: sub-site code {dup!r} appears twice")
        known = set(sections)
        for code in self.standard_sections:
            if code not in known:
                raise ValueError(f"standard_sections: {code!r} is not a section of any block")
        return self


def _first_duplicate(codes: list[str]) -> str | None:
    seen: set[str] = set()
    for code in codes:
        if code in seen:
            return code
        seen.add(code)
    return None


# --- Public: the site ----------------------------------------------------------------------------


class SectionOut(BaseModel):
    code: str
    name: str
    kind: str
    block: str = Field(description="Code of the block the section belongs to.")
    standard: bool = Field(description="Every sub-site has this section.")


class BlockOut(BaseModel):
    code: str
    name: str
    sections: list[SectionOut]


class SubsiteOut(BaseModel):
    code: str
    name: str
    kind: str


class SiteOut(BaseModel):
    blocks: list[BlockOut]
    standard_sections: list[str]
    subsites: list[SubsiteOut]


# --- Public: articles ----------------------------------------------------------------------------


class Ref(BaseModel):
    """A section or sub-site an article belongs to."""

    code: str
    name: str


class ArticleSummary(BaseModel):
    article_id: str
    slug: str
    url_path: str = Field(description="Public path, e.g. '/bai-viet/<slug>'.")
    url: str = Field(description="Absolute public URL (PUBLIC_BASE_URL + url_path).")
    title: str
    summary: str | None
    author: str | None
    section: Ref | None = Field(description="Null if the article has no known section.")
    subsite: Ref | None = Field(description="The source's sub-site; null if it is not one.")
    source: str
    revision: int
    published_at: AwareDatetime = Field(description="First publication on the portal (UTC).")
    updated_at: AwareDatetime = Field(description="Last public change (UTC).")
    source_published_at: AwareDatetime | None = Field(
        description="Publication time at the source, if it sent one (UTC)."
    )
    lead_image: MediaRef | None


class ArticleFull(ArticleSummary):
    body_html: str = Field(description="Sanitised HTML (repaired by normalize).")
    body_text: str
    categories: list[str]
    images: list[MediaRef]
    canonical_url: str | None = Field(description="The article's URL at the source.")


class ArticlePage(BaseModel):
    items: list[ArticleSummary]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )
    limit: int = Field(description="The page size applied (after capping).")


class SectionArticles(ArticlePage):
    section: SectionOut


class SubsiteArticles(ArticlePage):
    subsite: SubsiteOut
    section: SectionOut | None = Field(description="The `section` filter, if one was given.")


class HomeBlock(BaseModel):
    code: str
    name: str
    sections: list[SectionOut]
    articles: list[ArticleSummary] = Field(description="Latest articles of the block's sections.")


class LeaderPage(BaseModel):
    section: SectionOut
    articles: list[ArticleSummary]


class Home(BaseModel):
    blocks: list[HomeBlock]
    leaders: list[LeaderPage] = Field(description="The leader pages (sections of kind 'leader').")


class Problem(BaseModel):
    detail: str


class Gone(BaseModel):
    detail: str
    slug: str
    retracted_at: AwareDatetime | None
