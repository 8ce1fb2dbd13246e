"""The background loop: lease due connectors and poll them concurrently (bounded), run queued
backfills, prune the fetch log. Several ingest instances can run it at once: connectors and
backfills are leased with ``FOR UPDATE SKIP LOCKED``, so each poll runs in one place.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portal_ingest.pull import backfill_repository as backfills
from portal_ingest.pull import repository as repo
from portal_ingest.pull.domain import ConnectorKind, ErrorKind, Outcome
from portal_ingest.pull.poller import Poller
from portal_ingest.pull.report import Counts, PollReport
from portal_ingest.settings import Settings
from portal_runtime.clock import utcnow
from portal_runtime.logs import get_logger

log = get_logger(__name__)

Sessions = async_sessionmaker[AsyncSession]


class Scheduler:
    def __init__(self, settings: Settings, sessions: Sessions, poller: Poller) -> None:
        self.settings = settings
        self.sessions = sessions
        self.poller = poller
        self.polls: dict[int, asyncio.Task[PollReport]] = {}
        self.backfills: dict[str, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._last_prune = 0.0
        self._last_backfill_check = 0.0
        self._backfill_asked = True

    def wake(self) -> None:
        self._backfill_asked = True
        self._wake.set()

    # -- the loop --------------------------------------------------------------------------------

    async def run(self) -> None:
        backoff = self.settings.feed_tick_s
        try:
            while True:
                try:
                    if self.settings.feed_scheduler_enabled:
                        await self.tick()
                    now = asyncio.get_running_loop().time()
                    # Queued backfills are rare: look on request, else every few seconds.
                    if self._backfill_asked or now - self._last_backfill_check >= 5.0:
                        self._backfill_asked = False
                        self._last_backfill_check = now
                        await self.tick_backfills()
                    await self._prune()
                    backoff = self.settings.feed_tick_s
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # the database may be away: try again later
                    log.warning("feed_scheduler_tick_failed", error=repr(exc), retry_in_s=backoff)
                    backoff = min(backoff * 2, 30.0)
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(backoff):
                        await self._wake.wait()
        finally:
            await self.stop()

    async def stop(self) -> None:
        tasks = [*self.polls.values(), *self.backfills.values()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def tick(self) -> int:
        """Start polls of due connectors, as many as there are free slots."""
        free = self.settings.feed_max_concurrency - len(self.polls)
        if free <= 0:
            return 0
        async with self.sessions.begin() as session:
            due = await repo.claim_due(
                session, now=utcnow(), limit=free, lease_s=self.settings.feed_lease_s
            )
        for row in due:
            self.spawn(row.id, "schedule")
        return len(due)

    def spawn(self, connector_id: int, trigger: str) -> asyncio.Task[PollReport]:
        task = asyncio.create_task(
            self.poller.poll(connector_id, trigger), name=f"poll-{connector_id}"
        )
        self.polls[connector_id] = task

        def done(t: asyncio.Task[PollReport]) -> None:
            if self.polls.get(connector_id) is t:
                del self.polls[connector_id]
            self._wake.set()  # a slot is free

        task.add_done_callback(done)
        return task

    async def _prune(self) -> None:
        loop = asyncio.get_running_loop()
        if loop.time() - self._last_prune < 3600:
            return
        self._last_prune = loop.time()
        before = utcnow() - timedelta(days=self.settings.fetch_log_retention_days)
        async with self.sessions.begin() as session:
            removed = await repo.prune_fetch_log(session, before)
        if removed:
            log.info("fetch_log_pruned", rows=removed)

    # -- backfills -------------------------------------------------------------------------------

    async def tick_backfills(self) -> None:
        while len(self.backfills) < self.settings.max_running_backfills:
            async with self.sessions.begin() as session:
                job = await backfills.claim_backfill(
                    session,
                    now=utcnow(),
                    lease_s=self.settings.feed_lease_s,
                    exclude_sources=list(self.backfills),
                )
            if job is None:
                return
            task = asyncio.create_task(self._backfill(job), name=f"backfill-{job.id}")
            self.backfills[job.source] = task
            task.add_done_callback(self._backfill_done(job.source))

    def _backfill_done(self, source: str) -> Callable[[asyncio.Task[None]], None]:
        def done(_task: asyncio.Task[None]) -> None:
            self.backfills.pop(source, None)
            self._wake.set()

        return done

    async def _backfill(self, job: backfills.BackfillRow) -> None:
        heartbeat = asyncio.create_task(self._keep_lease(job.id))
        total = Counts()
        errors: list[str] = []
        state = "done"
        try:
            async with self.sessions() as session:
                connectors = [
                    c
                    for c in await repo.list_connectors(session, job.source)
                    if ConnectorKind(c.kind).is_sitemap
                    and (job.connector_id is None or c.id == job.connector_id)
                ]
            if not connectors:
                errors.append("the source has no sitemap connector (any more)")
                state = "failed"

            async def cancelled() -> bool:
                async with self.sessions() as session:
                    return await backfills.backfill_state(session, job.id) == "cancelled"

            for connector in connectors:
                report = PollReport(connector.id, job.source, connector.url, "backfill", utcnow())
                try:
                    await self.poller.backfill(
                        connector.id, job.date_from, job.date_to, report, cancelled=cancelled
                    )
                except Exception as exc:
                    kind = getattr(exc, "kind", ErrorKind.INTERNAL)
                    message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
                    report.fail(kind, message, getattr(exc, "http_status", None))
                    errors.append(f"{connector.url}: {message}")
                    if kind is ErrorKind.INTERNAL:
                        log.exception("backfill_failed", backfill=job.id)
                total.add(report.counts)
                await self._log(report)
                async with self.sessions.begin() as session:
                    await backfills.update_backfill(session, job.id, {"counts": total.as_dict()})
                if await cancelled():
                    state = "cancelled"
                    break
            if errors and state == "done":
                state = "failed" if not (total.new or total.updated or total.unchanged) else "done"
        except asyncio.CancelledError:
            # Shutting down: the lease runs out and another worker resumes it.
            heartbeat.cancel()
            raise
        finally:
            heartbeat.cancel()
        async with self.sessions.begin() as session:
            current = await backfills.backfill_state(session, job.id)
            await backfills.update_backfill(
                session,
                job.id,
                {
                    "state": "cancelled" if current == "cancelled" else state,
                    "finished_at": utcnow(),
                    "lease_until": None,
                    "counts": total.as_dict(),
                    "last_error": "; ".join(errors)[:4000] or None,
                },
            )
        log.info("backfill_finished", backfill=job.id, source=job.source, state=state)

    async def _keep_lease(self, backfill_id: int) -> None:
        while True:
            await asyncio.sleep(self.settings.feed_lease_s / 3)
            try:
                async with self.sessions.begin() as session:
                    await backfills.update_backfill(
                        session,
                        backfill_id,
                        {"lease_until": utcnow() + timedelta(seconds=self.settings.feed_lease_s)},
                    )
            except Exception as exc:
                log.warning("backfill_lease_renewal_failed", backfill=backfill_id, error=repr(exc))

    async def _log(self, report: PollReport) -> None:
        async with self.sessions.begin() as session:
            await repo.insert_fetch_log(
                session,
                {
                    "source": report.source,
                    "connector_id": report.connector_id,
                    "url": report.url,
                    "trigger": report.trigger,
                    "started_at": report.started_at,
                    "duration_ms": int((utcnow() - report.started_at).total_seconds() * 1000),
                    "outcome": report.outcome.value
                    if report.outcome is Outcome.ERROR
                    else Outcome.OK.value,
                    "error_kind": report.error_kind.value if report.error_kind else None,
                    "http_status": report.http_status,
                    "message": report.message,
                    "warnings": report.warnings,
                    "counts": report.counts.as_dict(),
                },
            )
