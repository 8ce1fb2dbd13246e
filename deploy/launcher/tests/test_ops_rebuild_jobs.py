"""`portal rebuild` following a background rebuild job (pure HTTP logic, no stack)."""

from __future__ import annotations

import httpx
import pytest

from portal_launcher.ops_http import RebuildFailed, _await_job

BASE = "http://search.test"
URL = BASE + "/admin/v1/reindex"
STATUS = "/admin/v1/reindex/jobs/" + "a" * 32


def job(state: str, **extra: object) -> dict[str, object]:
    return {"job_id": "a" * 32, "state": state, "status_url": STATUS, **extra}


def client_answering(*answers: httpx.Response) -> tuple[httpx.Client, list[str]]:
    seen: list[str] = []
    queue = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return queue.pop(0)

    return httpx.Client(transport=httpx.MockTransport(handler)), seen


def test_polls_the_job_until_it_succeeds_and_returns_its_result() -> None:
    result = {"documents": 12, "index": "articles-2"}
    client, seen = client_answering(
        httpx.Response(200, json=job("running")),
        httpx.Response(200, json=job("succeeded", result=result)),
    )
    assert _await_job(client, BASE, URL, job("running"), 1e9, 0.0, lambda: 0.0) == result
    assert seen == [BASE + STATUS, BASE + STATUS]


def test_a_failed_job_is_a_failure_with_its_reason() -> None:
    client, _ = client_answering(
        httpx.Response(200, json=job("failed", error="replay stalled at offset 42"))
    )
    with pytest.raises(RebuildFailed, match="replay stalled at offset 42"):
        _await_job(client, BASE, URL, job("running"), 1e9, 0.0, lambda: 0.0)


def test_a_job_the_service_no_longer_knows_is_a_failure() -> None:
    # Another instance answered, or the service restarted and forgot its jobs.
    client, _ = client_answering(httpx.Response(404, json={"detail": "no such reindex job"}))
    with pytest.raises(RebuildFailed, match="404"):
        _await_job(client, BASE, URL, job("running"), 1e9, 0.0, lambda: 0.0)


def test_gives_up_past_the_deadline() -> None:
    times = iter([0.0, 11.0])
    client, seen = client_answering(httpx.Response(200, json=job("running")))
    with pytest.raises(RebuildFailed, match="still running"):
        _await_job(client, BASE, URL, job("running"), 10.0, 0.0, lambda: next(times))
    assert len(seen) == 1
