"""What every desk page gets through FastAPI's dependencies: the desk's collaborators
(``Deps``), who is asking (``Anyone``, ``Signed``; ``AnyonePost``, ``SignedPost`` also check the
CSRF token) and the page guard (``on_page``).

``app.py`` builds one ``DeskDeps`` and ``install_desk`` keeps it in ``app.state.desk``.
"""

# No `from __future__ import annotations`: FastAPI reads the dependencies' annotations.
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request

from portal_moderation import repository as repo
from portal_moderation.compose.usecases import Composer
from portal_moderation.desk.auth import DeskAuth, NotSignedIn, Visitor
from portal_moderation.desk.dashboard_figures import DashboardFigures
from portal_moderation.desk.errors import forbidden
from portal_moderation.desk.templating import Templates
from portal_moderation.domain import DeskPage, Editor, Forbidden, authorize_page
from portal_moderation.jaeger import JaegerQuery
from portal_moderation.peers import SiteDirectory
from portal_moderation.submissions.usecases import SubmissionsDesk
from portal_moderation.usecases import Accounts, ReviewDesk, SourcesDesk


@dataclass
class DeskDeps:
    desk: ReviewDesk
    accounts: Accounts
    auth: DeskAuth
    templates: Templates
    sites: SiteDirectory
    sources: SourcesDesk
    submissions: SubmissionsDesk
    jaeger: JaegerQuery
    figures: DashboardFigures
    claim_ttl: timedelta
    composer: Composer

    async def source_names(self) -> dict[str, str]:
        async with self.desk.sessions() as session:
            return {s["code"]: s["name"] for s in await repo.list_sources(session)}


def desk_deps(request: Request) -> DeskDeps:
    deps: DeskDeps = request.app.state.desk
    return deps


Deps = Annotated[DeskDeps, Depends(desk_deps)]


async def visitor(request: Request, deps: Deps) -> Visitor:
    return await deps.auth.visitor_of(request)


async def signed_in(who: Annotated[Visitor, Depends(visitor)]) -> Visitor:
    if who.editor is None:
        raise NotSignedIn
    return who


async def csrf_checked(
    request: Request, deps: Deps, who: Annotated[Visitor, Depends(visitor)]
) -> Visitor:
    await deps.auth.check_csrf(request, who)
    return who


async def signed_in_csrf_checked(
    request: Request, deps: Deps, who: Annotated[Visitor, Depends(signed_in)]
) -> Visitor:
    await deps.auth.check_csrf(request, who)
    return who


Anyone = Annotated[Visitor, Depends(visitor)]
Signed = Annotated[Visitor, Depends(signed_in)]
AnyonePost = Annotated[Visitor, Depends(csrf_checked)]
SignedPost = Annotated[Visitor, Depends(signed_in_csrf_checked)]


def editor_of(who: Visitor) -> Editor:
    """The signed-in editor of a ``Signed`` or ``SignedPost`` visitor."""
    assert who.editor is not None
    return who.editor


def on_page(who: Visitor, page: DeskPage) -> Editor:
    """The editor, if their role may open ``page`` (403 page otherwise)."""
    editor = editor_of(who)
    try:
        authorize_page(editor, page)
    except Forbidden as exc:
        raise forbidden(exc) from exc
    return editor
