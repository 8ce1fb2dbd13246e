"""What the HTTP routes get through FastAPI's dependencies: the wired use cases (``Deps``) and
who is calling (``Partner``: an agency by its API key; ``AdminToken`` and ``DeskService``: the
deployment's admin token).

``app.py`` builds one ``ApiDeps`` and keeps it in ``app.state.api``.
"""

# No `from __future__ import annotations`: FastAPI reads the dependencies' annotations.
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException

from portal_ingest import domain
from portal_ingest import repository as repo
from portal_ingest.settings import Settings
from portal_ingest.usecases import Admin, DeskImages, Ingestor, Sessions
from portal_runtime.auth import require_admin


@dataclass(frozen=True)
class ApiDeps:
    settings: Settings
    sessions: Sessions
    ingestor: Ingestor  # every channel's intake
    admin: Admin  # sources, API keys, partner Kafka access
    desk_images: DeskImages


async def api_deps(request: Request) -> ApiDeps:
    deps: ApiDeps = request.app.state.api
    return deps


Deps = Annotated[ApiDeps, Depends(api_deps)]


# -- who is calling ---------------------------------------------------------------------------

# Operators (and `portal seed`): the deployment's ADMIN_TOKEN.
AdminToken = Depends(require_admin)

# Moderation's desk, server-side, with the same token: it has checked who the signed-in account
# is, and that it writes for its own agency and sections, before it calls.
DeskService = Depends(require_admin)


@dataclass(frozen=True)
class Caller:
    source: str
    key_id: str


_partner_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="PartnerApiKey",
    description="The agency's API key: `Authorization: Bearer pk_<key_id>_<secret>`.",
)


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"}
    )


async def partner_caller(
    deps: Deps,
    credentials: HTTPAuthorizationCredentials | None = Depends(_partner_bearer),
) -> Caller:
    """The agency is whoever the API key belongs to, never anything in the request."""
    if credentials is None:
        raise _unauthorized("API key missing: send 'Authorization: Bearer <api key>'")
    parsed = domain.parse_api_key(credentials.credentials)
    if parsed is None:
        raise _unauthorized("API key invalid")
    key_id, secret = parsed
    async with deps.sessions() as session:
        key = await repo.get_api_key(session, key_id)
        src = None if key is None else await repo.get_source(session, key.source)
    if key is None or not domain.verify_api_key(key_id, secret, key.secret_hash):
        raise _unauthorized("API key invalid")
    if key.revoked_at is not None:
        raise _unauthorized("API key revoked")
    refusal = domain.source_refusal(None if src is None else src.info(), key.source)
    if refusal is not None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, refusal)
    return Caller(source=key.source, key_id=key_id)


Partner = Annotated[Caller, Depends(partner_caller)]
