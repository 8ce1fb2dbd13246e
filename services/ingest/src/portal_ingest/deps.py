"""What the HTTP routes get through FastAPI's dependencies: the wired use cases (``Deps``) and
who is calling (``Partner``: an agency by its API key; ``AdminToken`` and ``DeskService``: the
deployment's admin token).

``app.py`` builds one ``ApiDeps`` and keeps it in ``app.state.api``. What an API key grants is
remembered for ``API_KEY_CACHE_S`` at most (``callers.py``).
"""

# No `from __future__ import annotations`: FastAPI reads the dependencies' annotations.
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException

from portal_ingest import domain
from portal_ingest import repository as repo
from portal_ingest.callers import KeyGrants
from portal_ingest.intake_groups import PushGroups
from portal_ingest.intake_usecases import Ingestor
from portal_ingest.settings import Settings
from portal_ingest.usecases import Admin, DeskImages, Sessions
from portal_runtime.auth import require_admin
from portal_runtime.ratelimit import Refusal


@dataclass(frozen=True)
class ApiDeps:
    settings: Settings
    sessions: Sessions
    ingestor: Ingestor  # every channel's intake
    pushes: PushGroups  # the partner API's single pushes, accepted in groups
    admin: Admin  # sources, API keys, partner Kafka access
    desk_images: DeskImages
    grants: KeyGrants  # what each API key grants (callers.py)
    # Counts a request's further items against its API key's rate limit (a batch push).
    charge_api_key: Callable[[str | None, int], Refusal | None]


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
    grant = await deps.grants.get(key_id)
    if grant is None or not domain.verify_api_key(key_id, secret, grant.secret_hash):
        raise _unauthorized("API key invalid")
    if grant.revoked_at is not None:
        raise _unauthorized("API key revoked")
    refusal = domain.source_refusal(grant.source, grant.source_code)
    if refusal is not None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, refusal)
    return Caller(source=grant.source_code, key_id=key_id)


def key_grants(sessions: Sessions, ttl_s: float) -> KeyGrants:
    """What API keys grant, read (one statement, no transaction) at most every ``ttl_s``."""

    async def load(key_id: str) -> repo.KeyGrant | None:
        async with sessions() as session:
            conn = await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            return await repo.get_key_grant(conn, key_id)

    return KeyGrants(load, ttl_s)


Partner = Annotated[Caller, Depends(partner_caller)]
