"""A partner agency pushing a steady stream of articles, as a real one does, in a thread.

Every request is retried with the same body (an idempotent PUT) on a 5xx or a connection error
until it gets an answer; a 2xx is the platform's promise, so each one is recorded: the article,
the revision ingest gave it and the title that revision carries.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support import OutsideClient


@dataclass(frozen=True)
class Acked:
    """The newest revision of one article that ingest acknowledged with a 2xx."""

    article_id: str
    revision: int
    title: str


@dataclass
class PartnerStream:
    base_url: str
    api_key: str
    marker: str  # one word in every title of this stream, so search finds exactly its articles
    section: str
    articles: int
    update_every: int = 3  # after every few new articles, a new revision of an earlier one
    pace_s: float = 0.15
    give_up_s: float = 180.0  # per request: past this the platform did not recover
    # Other instances of ingest: a request refused by one (restarting) goes to the next, as a
    # load balancer would send it.
    other_urls: tuple[str, ...] = ()
    acked: dict[str, Acked] = field(default_factory=dict)  # external id -> newest 2xx
    requests_acked: int = 0
    retries: int = 0
    failures: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.plan = self._plan()
        self._done = 0
        self._stop = threading.Event()
        self._urls = (self.base_url, *self.other_urls)
        self._next_url = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"partner-{self.marker}")

    def _plan(self) -> list[tuple[str, int]]:
        """(external id, version) in push order: new articles, with updates mixed in."""
        steps: list[tuple[str, int]] = []
        versions: dict[str, int] = {}
        for i in range(self.articles):
            ext = f"{self.marker}-{i:03d}"
            versions[ext] = 1
            steps.append((ext, 1))
            if i % self.update_every == self.update_every - 1:
                earlier = f"{self.marker}-{i - self.update_every + 1:03d}"
                versions[earlier] += 1
                steps.append((earlier, versions[earlier]))
        return steps

    def title(self, ext: str, version: int) -> str:
        number = ext.rsplit("-", 1)[1]
        return f"Tin {self.marker} số {number} bản {version}"

    def _body(self, ext: str, version: int) -> dict[str, Any]:
        title = self.title(ext, version)
        return {
            "content": {
                "title": title,
                "section": self.section,
                "summary": f"Tóm tắt {title}",
                "body_html": f"<p>{title}. Nội dung bài viết về công tác xây dựng Đảng.</p>",
            }
        }

    # -- running ----------------------------------------------------------------------------
    def start(self) -> PartnerStream:
        self._thread.start()
        return self

    def progress(self) -> float:
        with self._lock:
            return self._done / len(self.plan)

    def wait_progress(self, fraction: float, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self.progress() < fraction and self._thread.is_alive():
            if time.monotonic() > deadline:
                raise AssertionError(f"the partner stream did not reach {fraction:.0%}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Push nothing after the request in progress (the plan is cut short there)."""
        self._stop.set()

    def join(self, timeout_s: float = 300.0) -> None:
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            raise AssertionError(
                f"the partner stream did not finish in {timeout_s:.0f}s "
                f"({self.progress():.0%} of {len(self.plan)} requests acknowledged)"
            )

    def _run(self) -> None:
        with OutsideClient(timeout=15.0) as http:
            for ext, version in self.plan:
                if self._stop.is_set():
                    return
                self._push(http, ext, version)
                with self._lock:
                    self._done += 1
                self._stop.wait(self.pace_s)

    def _push(self, http: httpx.Client, ext: str, version: int) -> None:
        body = self._body(ext, version)
        headers = {"Authorization": f"Bearer {self.api_key}"}
        deadline = time.monotonic() + self.give_up_s
        backoff = 0.2
        while True:
            url = f"{self._urls[self._next_url]}/v1/articles/{ext}"
            try:
                resp = http.put(url, json=body, headers=headers)
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if resp.status_code < 300:
                    data = resp.json()
                    with self._lock:
                        self.requests_acked += 1
                        self.acked[ext] = Acked(
                            data["article_id"], int(data["revision"]), self.title(ext, version)
                        )
                    return
                if resp.status_code < 500:
                    self.failures.append(f"PUT {ext} v{version}: {resp.status_code} {resp.text}")
                    return
                problem = f"{resp.status_code} {resp.text[:200]}"
            if time.monotonic() > deadline:
                self.failures.append(f"PUT {ext} v{version}: gave up after {problem}")
                return
            self.retries += 1
            if len(self._urls) > 1:  # another instance takes it at once
                self._next_url = (self._next_url + 1) % len(self._urls)
                if self._next_url != 0:
                    continue
            time.sleep(backoff)
            backoff = min(backoff * 2, 2.0)
