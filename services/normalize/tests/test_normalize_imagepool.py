"""The image worker pool: a job over its time or memory budget costs one worker, not the
service, and the next job is served."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator

import pytest

from portal_normalize.imagepool import ImagePool
from portal_normalize.imaging import ImageRejected, process_image

from .normalize_imageserver import jpeg

WIDTHS = (320, 640)


@pytest.fixture
async def pool() -> AsyncIterator[ImagePool]:
    pool = ImagePool(workers=1, memory_mb=512, timeout_s=3.0)
    try:
        yield pool
    finally:
        pool.close()


async def served(pool: ImagePool) -> None:
    result = await pool.run(process_image, jpeg(800, 600), max_pixels=40_000_000, widths=WIDTHS)
    assert (result.width, result.height) == (800, 600)


async def test_an_image_is_checked_in_a_worker_and_its_rejection_comes_back(
    pool: ImagePool,
) -> None:
    await served(pool)
    with pytest.raises(ImageRejected) as caught:
        await pool.run(process_image, b"<!DOCTYPE html><p>", max_pixels=40_000_000, widths=WIDTHS)
    assert caught.value.code == "not_an_image" and "HTML" in caught.value.reason


async def test_a_job_over_its_time_is_stopped_and_the_next_is_served(pool: ImagePool) -> None:
    started = time.monotonic()
    with pytest.raises(ImageRejected) as caught:
        await pool.run(time.sleep, 600)
    assert caught.value.code == "over_budget" and "3 s" in caught.value.reason
    assert time.monotonic() - started < 60  # stopped, not waited out
    await served(pool)


async def test_a_job_over_its_memory_fails_alone_and_the_next_is_served(pool: ImagePool) -> None:
    with pytest.raises(ImageRejected) as caught:
        await pool.run(bytearray, 1024 * 1024 * 1024)  # 1 GiB in a 512 MiB worker
    assert caught.value.code == "over_budget" and "512 MB" in caught.value.reason
    await served(pool)


async def test_a_worker_that_dies_is_replaced(pool: ImagePool) -> None:
    with pytest.raises(ImageRejected) as caught:
        await pool.run(os._exit, 9)
    assert caught.value.code == "over_budget" and "exit code 9" in caught.value.reason
    await served(pool)


async def test_a_decoder_out_of_memory_is_over_budget_not_a_broken_image() -> None:
    pool = ImagePool(workers=1, memory_mb=1, timeout_s=10.0)  # nothing left to decode with
    try:
        with pytest.raises(ImageRejected) as caught:
            await pool.run(process_image, jpeg(800, 600), max_pixels=40_000_000, widths=WIDTHS)
        assert caught.value.code == "over_budget"
    finally:
        pool.close()


async def test_the_workers_start_with_the_first_image_and_stop_when_idle() -> None:
    pool = ImagePool(workers=1, memory_mb=512, timeout_s=10.0, idle_s=3600)
    try:
        assert not pool.running  # a text-only service runs no image workers
        await served(pool)
        assert pool.running
        assert not await pool.stop_if_idle()  # a job came within the idle time
        assert pool.running
        pool.idle_s = 0
        assert await pool.stop_if_idle()
        assert not pool.running
        await served(pool)  # started again by the next image
        assert pool.running
    finally:
        pool.close()
