"""Unit tests of the consumer-driven refreshes: an article after a quiet spell is refreshed at
once, writes under load share one refresh per gap, a failed refresh is tried again."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest

from portal_search.refresher import Refresher

GAP_S = 0.2


class Index:
    def __init__(self) -> None:
        self.refreshed_at: list[float] = []
        self.failures = 0  # the next refreshes that fail as OpenSearch away

    async def refresh(self) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("opensearch: connection refused")
        self.refreshed_at.append(time.monotonic())


@pytest.fixture
def index() -> Index:
    return Index()


@pytest.fixture
async def refresher(index: Index) -> AsyncIterator[Refresher]:
    refresher = Refresher(index.refresh, min_gap_s=GAP_S)
    task = asyncio.create_task(refresher.run())
    yield refresher
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_an_article_after_a_quiet_spell_is_refreshed_at_once(
    index: Index, refresher: Refresher
) -> None:
    written = time.monotonic()
    refresher.written()
    await asyncio.sleep(0.05)
    assert len(index.refreshed_at) == 1
    assert index.refreshed_at[0] - written < GAP_S / 2


async def test_nothing_written_means_no_refresh(index: Index, refresher: Refresher) -> None:
    await asyncio.sleep(GAP_S)
    assert index.refreshed_at == []


async def test_writes_under_load_share_one_refresh_per_gap(
    index: Index, refresher: Refresher
) -> None:
    started = last_write = time.monotonic()
    while time.monotonic() - started < 5 * GAP_S:  # a batch written every 20 ms
        last_write = time.monotonic()
        refresher.written()
        await asyncio.sleep(0.02)
    await asyncio.sleep(GAP_S * 1.5)
    # One at once, then one per gap: about 6, never one per batch (25).
    assert 2 <= len(index.refreshed_at) <= 7
    gaps = [b - a for a, b in zip(index.refreshed_at, index.refreshed_at[1:], strict=False)]
    assert min(gaps) >= GAP_S * 0.9
    # The last batch is covered by a refresh after it.
    assert index.refreshed_at[-1] >= last_write


async def test_a_failed_refresh_is_tried_again(index: Index, refresher: Refresher) -> None:
    index.failures = 1
    refresher.written()
    await asyncio.sleep(GAP_S * 1.5)
    assert len(index.refreshed_at) == 1
