"""What the HTTP routes get through FastAPI's dependencies (``Deps``): the article index, the
answers of recent searches and the rebuilder.

``app.py`` builds one ``ApiDeps`` and keeps it in ``app.state.api``.
"""

# No `from __future__ import annotations`: FastAPI reads the dependencies' annotations.
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from portal_search.index import ArticleIndex
from portal_search.rebuild import Rebuilder
from portal_search.resultcache import ResultCache


@dataclass(frozen=True)
class ApiDeps:
    index: ArticleIndex
    results: ResultCache  # answers of recent searches
    rebuilder: Rebuilder


async def api_deps(request: Request) -> ApiDeps:
    deps: ApiDeps = request.app.state.api
    return deps


Deps = Annotated[ApiDeps, Depends(api_deps)]
