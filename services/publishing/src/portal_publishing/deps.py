"""What the HTTP routes get through FastAPI's dependencies: the read side and its caches
(``Deps``) and a database session (``Session``).

``app.py`` builds one ``ApiDeps`` and keeps it in ``app.state.api``.
"""

# No `from __future__ import annotations`: FastAPI reads the dependencies' annotations.
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portal_publishing.caching import CachePolicy
from portal_publishing.pagecache import PageCache
from portal_publishing.views import Views


@dataclass(frozen=True)
class ApiDeps:
    sessions: async_sessionmaker[AsyncSession]
    pages: PageCache  # rendered public pages
    views: Views
    cache: CachePolicy


async def api_deps(request: Request) -> ApiDeps:
    deps: ApiDeps = request.app.state.api
    return deps


Deps = Annotated[ApiDeps, Depends(api_deps)]


async def session(deps: Deps) -> AsyncIterator[AsyncSession]:
    async with deps.sessions() as s:
        yield s


Session = Annotated[AsyncSession, Depends(session)]
