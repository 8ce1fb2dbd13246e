"""The editors' web desk under /desk: server-rendered pages (Jinja2) with htmx.

One module per page; each has a ``router`` of module-level routes and its navigation link
``NAV`` (None: not in the navigation). A route checks the role on the server (``domain``), calls
a use case (``usecases``) or a query (``repository``, ``reports``) and renders a template from
``templates/``. Pages work without JavaScript (forms post and redirect); with htmx they swap
fragments in place. To add a page: write its module beside these and add it to ``PAGES``.

Shared by the pages: ``deps`` (what a route gets: the desk's collaborators, who is asking, the
page guard), ``auth`` (cookie sessions, CSRF), ``templating`` (layout, navigation, security
headers), ``errors`` (refusals as pages), ``forms`` (reading fields), ``present`` (labels,
Vietnamese dates and numbers), ``charts`` (SVG charts).
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from portal_moderation.desk import (
    accounts,
    audit,
    compose,
    dashboard,
    item,
    journey,
    queue,
    signin,
    sources,
    submissions,
)
from portal_moderation.desk.auth import DESK_PREFIX
from portal_moderation.desk.deps import DeskDeps
from portal_moderation.desk.errors import install_error_pages
from portal_moderation.desk.templating import STATIC_DIR, DeskHeaders

# In the order of the navigation.
PAGES = (
    signin,
    queue,
    item,
    compose,
    dashboard,
    audit,
    sources,
    accounts,
    journey,
    submissions,
)


def install_desk(app: FastAPI, deps: DeskDeps) -> None:
    """Mount the desk on the app: its pages, navigation, static assets, error pages, headers."""
    app.state.desk = deps
    for page in PAGES:
        app.include_router(page.router)
        if page.NAV is not None:
            deps.templates.add_nav(page.NAV)
    app.mount(f"{DESK_PREFIX}/static", StaticFiles(directory=STATIC_DIR), name="desk-static")
    install_error_pages(app)
    app.add_middleware(DeskHeaders)
