"""Repair, the HTTP side: ask the owning service to rebuild its read model or store.

Each service owns its data; the `portal` command only triggers the service's own admin API
(bearer ``ADMIN_TOKEN``) and waits for the outcome. It asks for a background job
(``Prefer: respond-async``): a service that offers one answers 202 with a job to poll, so a long
replay outlives no request and no proxy's timeout; one that does not answers when done.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from portal_launcher.credentials import admin_token as service_admin_token
from portal_launcher.services import service_port
from portal_launcher.settings import StackSettings

# A rebuild that answers when done, or a job polled until done: allow a large store time to
# replay.
REBUILD_TIMEOUT_S = 3600.0
POLL_INTERVAL_S = 1.0

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
    poll_interval_s: float = POLL_INTERVAL_S,
    clock: Callable[[], float] = time.monotonic,
) -> list[RebuildStep]:
    steps: list[RebuildStep] = []
    for service, path in REBUILDS[target]:
        headers = {"Authorization": f"Bearer {admin_token(settings, service)}"}
        base = (base_url or f"http://{settings.host}:{service_port(settings, service)}").rstrip("/")
        url = base + path
        deadline = clock() + REBUILD_TIMEOUT_S
        try:
            with httpx.Client(headers=headers, timeout=REBUILD_TIMEOUT_S) as client:
                resp = client.post(url, headers={"Prefer": "respond-async"})
                if resp.status_code == 202:
                    result = _await_job(
                        client, base, url, resp.json(), deadline, poll_interval_s, clock
                    )
                elif resp.status_code == 200:
                    result = resp.json()
                else:
                    raise RebuildFailed(f"{url}: {resp.status_code} {resp.text[:500]}")
        except httpx.HTTPError as exc:
            raise RebuildFailed(f"{url}: {type(exc).__name__}: {exc}") from exc
        steps.append(RebuildStep(url, result))
    return steps


def _await_job(
    client: httpx.Client,
    base: str,
    url: str,
    job: dict[str, Any],
    deadline: float,
    poll_interval_s: float,
    clock: Callable[[], float],
) -> dict[str, Any]:
    """Poll a background rebuild until it succeeds (its result) or fails (RebuildFailed)."""
    status_url = base + job["status_url"]
    while job["state"] == "running":
        if clock() > deadline:
            raise RebuildFailed(
                f"{url}: still running after {REBUILD_TIMEOUT_S:.0f} s ({status_url})"
            )
        time.sleep(poll_interval_s)
        resp = client.get(status_url)
        if resp.status_code != 200:
            raise RebuildFailed(f"{status_url}: {resp.status_code} {resp.text[:500]}")
        job = resp.json()
    if job["state"] != "succeeded":
        raise RebuildFailed(
            f"{url}: the job {job['state']}: {job.get('error') or 'no reason given'}"
        )
    result: dict[str, Any] = job["result"]
    return result
