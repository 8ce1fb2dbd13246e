"""Pagination links: numbered pages and cursor pages."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

# --- pagination -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PageLink:
    label: str
    href: str | None  # None: the current page, or a gap
    current: bool = False
    rel: str | None = None


def query_string(params: Mapping[str, Any]) -> str:
    clean: list[tuple[str, str]] = []
    for key, value in params.items():
        if value is None or value == "" or value == []:
            continue
        if isinstance(value, list | tuple):
            clean += [(key, str(v)) for v in value if v not in (None, "")]
        else:
            clean.append((key, str(value)))
    return ("?" + urlencode(clean)) if clean else ""


def page_links(
    path: str, params: Mapping[str, Any], *, page: int, total: int, size: int, window: int = 2
) -> list[PageLink]:
    """Numbered pages around the current one, the first and the last, with gaps ('…');
    empty when everything fits on one page."""
    pages = max(1, math.ceil(total / size)) if size > 0 else 1
    if pages <= 1:
        return []
    page = min(max(page, 1), pages)

    def href(n: int) -> str:
        return path + query_string({**params, "trang": n if n > 1 else None})

    shown = sorted({1, pages, *range(max(1, page - window), min(pages, page + window) + 1)})
    links: list[PageLink] = []
    if page > 1:
        links.append(PageLink("‹ Trang trước", href(page - 1), rel="prev"))
    previous = 0
    for n in shown:
        if n - previous > 1:
            links.append(PageLink("…", None))
        links.append(PageLink(str(n), None if n == page else href(n), current=n == page))
        previous = n
    if page < pages:
        links.append(PageLink("Trang sau ›", href(page + 1), rel="next"))
    return links


@dataclass(frozen=True)
class CursorPager:
    """Pagination that survives new items: the API's cursor names where the next page starts."""

    next_href: str | None
    first_href: str | None


def cursor_pager(
    path: str, params: Mapping[str, Any], *, next_cursor: str | None, on_first_page: bool
) -> CursorPager:
    return CursorPager(
        next_href=path + query_string({**params, "tiep": next_cursor}) if next_cursor else None,
        first_href=None if on_first_page else path + query_string(params),
    )
