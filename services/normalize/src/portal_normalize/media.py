"""An article's images into object storage: cache, fetch, check, store (the I/O adapter).

Per URL: a copy stored before is reused (no fetch) for ``image_cache_days``; a failure is
reused for ``image_retry_failed_minutes`` (a later revision tries again). Otherwise the image
is fetched (``fetch.ImageFetcher``: SSRF rules, size and time limits), checked and stripped
(``imaging.process_image``, in the image worker pool: memory and time budgets) and stored
content-addressed, so the same file linked from many articles or URLs is stored once:
    images/<sha[:2]>/<sha>/original.<ext>    the original without its metadata
    images/<sha[:2]>/<sha>/w<width>.webp     the renditions, made on first request
The renditions' keys are part of the article from the start; ``rendition`` makes one when it
is first asked for (publishing's /media/ asks on a miss), stores it, and it is served from
object storage ever after.
A partner's failure is an outcome with a reason (never an exception); object storage being
down is a dependency failure (``ConnectionError``): the message is retried, nothing is lost.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import urllib3.exceptions
from minio.error import MinioException, S3Error
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portal_normalize import repository
from portal_normalize.domain import ImageOutcome
from portal_normalize.fetch import FetchError, ImageFetcher
from portal_normalize.imagepool import ImagePool
from portal_normalize.imaging import ImageRejected, ProcessedImage, process_image, render
from portal_normalize.settings import Settings
from portal_runtime.logs import get_logger
from portal_runtime.storage import ObjectStore

log = get_logger(__name__)

_STORAGE_ERRORS = (MinioException, urllib3.exceptions.HTTPError, OSError)

Record = tuple[ImageOutcome, str | None, str | None, int | None]


def object_prefix(sha256: str) -> str:
    return f"images/{sha256[:2]}/{sha256}"


RENDITION_KEY = re.compile(r"^images/([0-9a-f]{2})/([0-9a-f]{64})/w([1-9][0-9]{0,3})\.webp$")


class RenditionsBusy(Exception):
    """Too many renditions are being made: ask again shortly."""


class MediaService:
    def __init__(
        self,
        settings: Settings,
        store: ObjectStore,
        sessions: async_sessionmaker[AsyncSession],
        fetcher: ImageFetcher,
        pool: ImagePool,
    ) -> None:
        self.settings = settings
        self.store = store
        self.sessions = sessions
        self.fetcher = fetcher
        self.pool = pool
        self._making: dict[str, asyncio.Future[bytes | None]] = {}
        # Shared by every article this process handles: bounds connections to partners.
        self.slots = asyncio.Semaphore(max(1, settings.image_fetch_concurrency))

    async def resolve(self, urls: Sequence[str]) -> dict[str, ImageOutcome]:
        """The outcome of every URL (stored copy or failure with its reason)."""
        urls = list(dict.fromkeys(urls))
        if not urls:
            return {}
        now = datetime.now(UTC)
        keep_ok = timedelta(days=self.settings.image_cache_days)
        keep_failed = timedelta(minutes=self.settings.image_retry_failed_minutes)
        async with self.sessions() as session:
            cached = await repository.cached_images(session, urls)
        outcomes: dict[str, ImageOutcome] = {}
        todo: list[str] = []
        for url in urls:
            hit = cached.get(url)
            if hit is not None and now - hit.fetched_at < (
                keep_ok if hit.outcome.ok else keep_failed
            ):
                outcomes[url] = hit.outcome
            else:
                todo.append(url)
        records = await self._within_budget(todo)
        cacheable = [r for r in records if r[3] != -1]
        if cacheable:
            async with self.sessions.begin() as session:
                await repository.save_images(session, cacheable)
        for outcome, *_ in records:
            outcomes[outcome.url] = outcome
        return outcomes

    async def _within_budget(self, urls: list[str]) -> list[Record]:
        if not urls:
            return []
        budget = self.settings.image_article_budget_s
        tasks = {asyncio.create_task(self._one(url)): url for url in urls}
        done, pending = await asyncio.wait(tasks, timeout=budget)
        for task in pending:
            task.cancel()
        records: list[Record] = []
        for task, url in tasks.items():
            if task in done:
                records.append(task.result())  # storage failures propagate: retried
            else:
                reason = f"the article's time for images ({budget:g} s) ran out"
                # Not cached: the next revision tries again.
                log.info("image_over_budget", url=url[:300])
                records.append((ImageOutcome(url, code="timeout", reason=reason), None, None, -1))
        return records

    async def _one(self, url: str) -> Record:
        async with self.slots:
            try:
                fetched = await self.fetcher.fetch(url)
            except FetchError as exc:
                log.info("image_not_fetched", url=url[:300], code=exc.code, reason=exc.reason)
                return ImageOutcome(url, code=exc.code, reason=exc.reason), None, None, None
        try:
            image = await self.pool.run(
                process_image,
                fetched.data,
                max_pixels=self.settings.image_max_pixels,
                max_total_pixels=self.settings.image_max_total_pixels,
                widths=self.settings.rendition_widths,
            )
        except ImageRejected as exc:
            declared = fetched.content_type or "no content type"
            reason = f"{exc.reason} (served as {declared})"
            log.info("image_rejected", url=url[:300], code=exc.code, reason=reason)
            return ImageOutcome(url, code=exc.code, reason=reason), None, None, len(fetched.data)
        outcome = await self._store(url, image)
        return outcome, image.sha256, image.content_type, len(fetched.data)

    async def _store(self, url: str, image: ProcessedImage) -> ImageOutcome:
        prefix = object_prefix(image.sha256)
        original = f"{prefix}/original.{image.extension}"
        renditions = {w: f"{prefix}/w{w}.webp" for w in image.rendition_widths}
        if image.reduced:
            log.info("animation_reduced", url=url[:300], sha256=image.sha256)
        try:
            if not await self._exists(original):
                await self.store.put(original, image.original, image.content_type)
        except _STORAGE_ERRORS as exc:
            raise ConnectionError(f"object storage: {exc!r}") from exc
        return ImageOutcome(
            url,
            object_key=original,
            width=image.width,
            height=image.height,
            renditions=renditions,
        )

    async def _exists(self, key: str) -> bool:
        def stat() -> bool:
            try:
                self.store.client.stat_object(self.store.bucket, key)
            except S3Error as exc:
                if exc.code in ("NoSuchKey", "NoSuchObject", "NotFound"):
                    return False
                raise
            return True

        return await asyncio.to_thread(stat)

    # --- renditions on first request ------------------------------------------------------

    async def rendition(self, key: str) -> bytes | None:
        """The rendition stored under ``key``, made now if it is not yet; None when no stored
        image has such a rendition. One making per key at a time (others wait for it)."""
        match = RENDITION_KEY.match(key)
        if match is None or match.group(1) != match.group(2)[:2]:
            return None
        making = self._making.get(key)
        if making is not None:
            return await asyncio.shield(making)
        if len(self._making) >= self.settings.image_render_queue:
            raise RenditionsBusy(f"{len(self._making)} renditions are being made")
        future: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()
        self._making[key] = future
        try:
            data = await self._make(key, match.group(2), int(match.group(3)))
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # marked retrieved: waiters get it, and none waiting is fine
            raise
        else:
            future.set_result(data)
        finally:
            del self._making[key]
        return data

    async def _make(self, key: str, sha256: str, width: int) -> bytes | None:
        try:
            return await self.store.get(key)  # made meanwhile by another instance
        except S3Error as exc:
            if exc.code not in ("NoSuchKey", "NoSuchObject", "NotFound"):
                raise ConnectionError(f"object storage: {exc!r}") from exc
        except _STORAGE_ERRORS as exc:
            raise ConnectionError(f"object storage: {exc!r}") from exc
        async with self.sessions() as session:
            stored = await repository.image_by_sha(session, sha256)
        if stored is None or stored.renditions.get(width) != key or stored.object_key is None:
            return None
        try:
            original = await self.store.get(stored.object_key)
        except _STORAGE_ERRORS as exc:
            raise ConnectionError(f"object storage: {exc!r}") from exc
        data = await self.pool.run(
            render,
            original,
            width,
            max_pixels=self.settings.image_max_pixels,
            max_total_pixels=self.settings.image_max_total_pixels,
        )
        try:
            await self.store.put(key, data, "image/webp")
        except _STORAGE_ERRORS as exc:
            raise ConnectionError(f"object storage: {exc!r}") from exc
        log.info("rendition_made", key=key, bytes=len(data))
        return data
