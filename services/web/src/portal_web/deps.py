"""What every page route gets through FastAPI's dependencies: the website (``WebDep``).

``app.py`` builds one ``Web`` and keeps it in ``app.state.web``.
"""

# No `from __future__ import annotations`: FastAPI reads the dependencies' annotations.
from typing import Annotated

from fastapi import Depends, Request

from portal_web.pages import Web


async def website(request: Request) -> Web:
    web: Web = request.app.state.web
    return web


WebDep = Annotated[Web, Depends(website)]
