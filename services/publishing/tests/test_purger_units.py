"""The edge purger's consumer driven without Kafka or an edge: a batch's events make one purge,
and each purge is repeated once, later, merged with the others falling due meanwhile. The real
edge: test_edge_stack.py."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, cast

from portal_contracts.articles import (
    ArticlePublished,
    ArticlePublishedEvent,
    NormalizedArticle,
    PublishedState,
)
from portal_contracts.topics import ARTICLE_PUBLISHED
from portal_publishing.edge import key_groups
from portal_publishing.purger import Purger, merged
from portal_publishing.surrogate import Purge, touched_by
from portal_runtime.testing import drive, records_for

NOW = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)


class Edge:
    def __init__(self) -> None:
        self.purges: list[Purge] = []

    async def purge(self, purge: Purge) -> int:
        self.purges.append(purge)
        return 1


class Timer:
    """The purger's clock and sleep, moved on by the test."""

    def __init__(self) -> None:
        self.now = 0.0
        self.wakes: list[float] = []
        self.go = asyncio.Event()

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.wakes.append(self.now + seconds)
        await self.go.wait()
        self.go.clear()
        self.now = max(self.now, self.wakes[-1])


def event(article_id: str, state: PublishedState = PublishedState.PUBLISHED) -> Any:
    article = None
    if state is PublishedState.PUBLISHED:
        article = NormalizedArticle(
            title="Tin",
            summary="x",
            body_html="<p>x</p>",
            body_text="x",
            section="ct-xay-dung-dang",
        )
    return ArticlePublishedEvent(
        producer="publishing",
        subject=article_id,
        data=ArticlePublished(
            article_id=article_id,
            source="tp-ha-noi",
            revision=1,
            state=state,
            slug=f"tin-{article_id}",
            url_path=f"/bai-viet/tin-{article_id}",
            published_at=NOW,
            updated_at=NOW,
            article=article,
        ),
    )


async def until(check: Any) -> None:
    for _ in range(1000):  # the repeat task needs a few turns of the loop, never a wait
        if check():
            return
        await asyncio.sleep(0)
    raise AssertionError("the repeat never came")


async def test_purges_falling_due_together_are_repeated_once_in_one_purge() -> None:
    edge, timer = Edge(), Timer()
    purger = Purger(cast(Any, edge), 2.0, clock=timer.clock, sleep=timer.sleep)
    first = [event("a1"), event("a2")]
    second = [event("a3", PublishedState.RETRACTED)]

    await drive(purger.subscription(), records_for(ARTICLE_PUBLISHED.name, *first))
    timer.now = 0.5
    await drive(purger.subscription(), records_for(ARTICLE_PUBLISHED.name, *second))
    once = [merged([touched_by(e.data) for e in batch]) for batch in (first, second)]
    assert edge.purges == once  # one purge per batch, at once

    timer.go.set()
    await until(lambda: len(edge.purges) == 3)
    assert timer.wakes == [3.0]  # due at 2.0 and 2.5: both repeated at 2.0 + half the delay
    assert edge.purges[2] == merged(once)
    assert set(edge.purges[2].hard) == {"article:a3"}  # a removal stays a removal


def test_a_purge_is_cut_into_headers_the_edge_takes() -> None:
    keys = [f"article:bao-a:{n:04d}" for n in range(1000)]
    groups = key_groups(keys, 4096)
    assert [k for g in groups for k in g] == keys  # every key, in order
    assert len(groups) > 1
    assert all(len(" ".join(g).encode()) <= 4096 for g in groups)
    assert key_groups(["home", "site"], 4096) == [("home", "site")]
    assert key_groups([], 4096) == []
