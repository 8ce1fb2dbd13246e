"""The image worker pool: untrusted images are decoded in processes the service can lose.

Each worker is its own process (spawned, not forked: the service runs threads) with an address
space limit (RLIMIT_AS) and libvips' untrusted loaders blocked, so a decoder that runs away with
memory fails or dies alone. A job over its time budget has its worker killed and replaced
(pebble does the killing and replacing). The service process itself never decodes a pixel.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import resource
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

    def __init__(self, *, workers: int, memory_mb: int, timeout_s: float) -> None:
        self.workers = max(1, workers)
        self.memory_mb = memory_mb
        self.timeout_s = timeout_s
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPool:
        return ProcessPool(
            max_workers=self.workers,
            initializer=_limit_worker,
            initargs=(self.memory_mb * 1024 * 1024,),
            context=multiprocessing.get_context("spawn"),
        )

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            future = self._pool.schedule(fn, args=args, kwargs=kwargs, timeout=self.timeout_s)
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

    def close(self) -> None:
        self._pool.stop()  # type: ignore[no-untyped-call]
        self._pool.join(timeout=10)
