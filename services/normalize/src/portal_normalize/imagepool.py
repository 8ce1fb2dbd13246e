"""The image worker pool: untrusted images are decoded in processes the service can lose.

Each worker is its own process (spawned, not forked: the service runs threads) with an address
space limit (RLIMIT_AS) and libvips' untrusted loaders blocked, so a decoder that runs away with
memory fails or dies alone. A job over its time budget has its worker killed and replaced
(pebble does the killing and replacing). The service process itself never decodes a pixel.

The workers start with the first image and stop after a quiet spell: an idle pebble pool still
wakes its manager threads ten times a second, which costs the text-only pipeline CPU for
nothing.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import resource
import time
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from pebble import ProcessExpired, ProcessPool

from portal_normalize.imaging import ImageRejected

T = TypeVar("T")


def _limit_worker(memory_bytes: int) -> None:
    """Runs first in every worker process."""
    if memory_bytes > 0:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    import pyvips

    pyvips.block_untrusted_set(True)
    pyvips.cache_set_max(0)  # one image per job: nothing to reuse, memory to keep
    pyvips.concurrency_set(1)  # the pool is the parallelism


class ImagePool:
    """``await pool.run(fn, *args)``: ``fn`` in a worker; its ``ImageRejected`` comes back as
    such, and running out of time or memory becomes an ``ImageRejected`` with the reason."""

    def __init__(
        self, *, workers: int, memory_mb: int, timeout_s: float, idle_s: float = 60.0
    ) -> None:
        self.workers = max(1, workers)
        self.memory_mb = memory_mb
        self.timeout_s = timeout_s
        self.idle_s = idle_s
        self._pool: ProcessPool | None = None
        self._jobs = 0  # running or waiting now
        self._last_job = time.monotonic()

    @property
    def running(self) -> bool:
        """Whether worker processes are up (or starting)."""
        return self._pool is not None

    def _current(self) -> ProcessPool:
        if self._pool is None:
            self._pool = self._new_pool()
        return self._pool

    def _new_pool(self) -> ProcessPool:
        return ProcessPool(
            max_workers=self.workers,
            initializer=_limit_worker,
            initargs=(self.memory_mb * 1024 * 1024,),
            context=multiprocessing.get_context("spawn"),
        )

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        self._jobs += 1
        try:
            return await self._run(fn, *args, **kwargs)
        finally:
            self._jobs -= 1
            self._last_job = time.monotonic()

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            future = self._current().schedule(fn, args=args, kwargs=kwargs, timeout=self.timeout_s)
        except RuntimeError:  # the pool gave up after its workers kept dying as they started
            self._pool = self._new_pool()
            future = self._pool.schedule(fn, args=args, kwargs=kwargs, timeout=self.timeout_s)
        try:
            return await asyncio.wrap_future(future)
        except BrokenProcessPool as exc:
            self._pool = self._new_pool()
            # A dependency failure, not the image's fault: the message is retried.
            raise ConnectionError(f"the image workers could not start: {exc}") from exc
        except FutureTimeout as exc:
            raise ImageRejected(
                "over_budget", f"processing took over {self.timeout_s:g} s and was stopped"
            ) from exc
        except MemoryError as exc:
            raise ImageRejected(
                "over_budget", f"decoding needs over {self.memory_mb} MB of memory"
            ) from exc
        except ProcessExpired as exc:
            raise ImageRejected(
                "over_budget",
                f"the decoder died (exit code {exc.exitcode}): over {self.memory_mb} MB of "
                "memory or a malformed file",
            ) from exc

    async def warm(self) -> None:
        """Start the workers now (spawning one takes a moment), not with the first image."""
        await self.run(int)

    async def stop_when_idle(self) -> None:
        """Forever: stop the workers once no job has come for ``idle_s``; the next job starts
        them again."""
        while True:
            await self.stop_if_idle()
            quiet = time.monotonic() - self._last_job
            await asyncio.sleep(max(self.idle_s - quiet, 0.0) + 0.1)

    async def stop_if_idle(self) -> bool:
        """Stop the workers if no job is running and none has come for ``idle_s``."""
        if self._pool is None or self._jobs or time.monotonic() - self._last_job < self.idle_s:
            return False
        pool, self._pool = self._pool, None
        await asyncio.to_thread(_stop, pool)
        return True

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            _stop(pool)


def _stop(pool: ProcessPool) -> None:
    pool.stop()  # type: ignore[no-untyped-call]
    pool.join(timeout=10)
