"""Repair, the HTTP side: ask the owning service to rebuild its read model or store.

Each service owns its data; the `portal` command only triggers the service's own admin API
(bearer ``ADMIN_TOKEN``) and waits for the answer.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import httpx

from portal_launcher.credentials import admin_token as service_admin_token
from portal_launcher.services import service_port
from portal_launcher.settings import StackSettings

# Rebuilds answer when done: allow a large store time to replay.
REBUILD_TIMEOUT_S = 3600.0

# What each `portal rebuild` target calls, in order.
REBUILDS: dict[str, tuple[tuple[str, str], ...]] = {
    "search": (
        ("search", "/admin/v1/reindex"),
        ("search", "/admin/v1/questions/reindex"),
    ),
    "publishing": (("publishing", "/admin/v1/rebuild"),),
}


class RebuildFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class RebuildStep:
    url: str
    result: dict[str, Any]


def admin_token(settings: StackSettings, service: str) -> str:
    """``ADMIN_TOKEN`` from the environment, else the local stack's own token of ``service``."""
    return os.environ.get("ADMIN_TOKEN") or service_admin_token(settings, service)


def rebuild(
    settings: StackSettings,
    target: str,
    *,
    base_url: str | None = None,
) -> list[RebuildStep]:
    steps: list[RebuildStep] = []
    for service, path in REBUILDS[target]:
        headers = {"Authorization": f"Bearer {admin_token(settings, service)}"}
        base = base_url or f"http://{settings.host}:{service_port(settings, service)}"
        url = base.rstrip("/") + path
        try:
            resp = httpx.post(url, headers=headers, timeout=REBUILD_TIMEOUT_S)
        except httpx.HTTPError as exc:
            raise RebuildFailed(f"{url}: {type(exc).__name__}: {exc}") from exc
        if resp.status_code != 200:
            raise RebuildFailed(f"{url}: {resp.status_code} {resp.text[:500]}")
        steps.append(RebuildStep(url, resp.json()))
    return steps
