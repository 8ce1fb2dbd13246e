"""The operators' admin API guard: a bearer token from the service's environment.

Partners (API keys), editors (accounts and sessions) and the public have their own schemes in
their services; this guard is only for the admin endpoints that `portal seed` and SREs call.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from portal_runtime.settings import ServiceSettings

_bearer = HTTPBearer(auto_error=False, description="The deployment's ADMIN_TOKEN")

# What every admin route may answer besides its own codes (for the routers' ``responses=``).
ADMIN_RESPONSES: dict[int | str, dict[str, str]] = {
    401: {"description": "admin token missing or wrong"},
    503: {"description": "admin API is not configured (no ADMIN_TOKEN)"},
}


def check_admin(
    settings: ServiceSettings, credentials: HTTPAuthorizationCredentials | None
) -> None:
    expected = settings.admin_token.get_secret_value()
    if not expected:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "admin API is not configured")
    if credentials is None or not hmac.compare_digest(
        credentials.credentials.encode(), expected.encode()
    ):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "admin token missing or wrong",
            headers={"WWW-Authenticate": "Bearer"},
        )


def require_admin(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)
) -> None:
    """The guard of a module-level admin router, for the app ``Service.create_app`` made."""
    check_admin(request.app.state.service.settings, credentials)


def make_admin_router(
    *, tags: list[str] | None = None, responses: dict[int | str, dict[str, Any]] | None = None
) -> APIRouter:
    """A router of operators' routes: under ``/admin/v1``, behind the admin token."""
    return APIRouter(
        prefix="/admin/v1",
        tags=list(tags or ["admin"]),
        dependencies=[Depends(require_admin)],
        responses={**ADMIN_RESPONSES, **(responses or {})},
    )


def admin_guard(settings: ServiceSettings) -> Callable[..., None]:
    def guard(credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> None:
        check_admin(settings, credentials)

    return guard
