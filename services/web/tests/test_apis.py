"""The website's outgoing calls: paths it builds, and what it keeps for a few seconds."""

from __future__ import annotations

import asyncio

import pytest

from portal_runtime.memo import Memo
from portal_web.apis import seg


def test_a_segment_cannot_leave_its_place_in_the_path() -> None:
    assert seg("../../admin/v1?x=1#y") == "..%2F..%2Fadmin%2Fv1%3Fx%3D1%23y"
    assert seg("đảng") == "%C4%91%E1%BA%A3ng"


def test_the_memo_reuses_an_answer_within_its_time_and_stays_bounded() -> None:
    calls: list[str] = []

    async def produce(key: str) -> str:
        calls.append(key)
        return key.upper()

    async def run() -> None:
        memo = Memo(ttl_s=60, max_entries=2)
        assert await memo.get("a", lambda: produce("a")) == "A"
        assert await memo.get("a", lambda: produce("a")) == "A"
        assert calls == ["a"]
        await memo.get("b", lambda: produce("b"))
        await memo.get("c", lambda: produce("c"))  # "a" leaves: at most two entries
        await memo.get("a", lambda: produce("a"))
        assert calls == ["a", "b", "c", "a"]
        off = Memo(ttl_s=0)
        await off.get("x", lambda: produce("x"))
        await off.get("x", lambda: produce("x"))
        assert calls[-2:] == ["x", "x"]

    asyncio.run(run())


def test_readers_missing_the_same_answer_at_once_share_one_call() -> None:
    calls: list[str] = []
    release = asyncio.Event()

    async def produce(key: str) -> str:
        calls.append(key)
        await release.wait()
        if key == "broken":
            raise ConnectionError("the API did not answer")
        return key.upper()

    async def run() -> None:
        memo = Memo(ttl_s=60)
        readers = [asyncio.ensure_future(memo.get("a", lambda: produce("a"))) for _ in range(5)]
        failing = [
            asyncio.ensure_future(memo.get("broken", lambda: produce("broken"))) for _ in range(3)
        ]
        await asyncio.sleep(0)
        readers[0].cancel()  # one reader leaves: the others still get the answer
        release.set()
        assert await asyncio.gather(*readers[1:]) == ["A"] * 4
        assert calls == ["a", "broken"]
        outcomes = await asyncio.gather(*failing, return_exceptions=True)
        assert all(isinstance(o, ConnectionError) for o in outcomes)
        # A failure is not kept: the next reader asks again.
        with pytest.raises(ConnectionError):
            await memo.get("broken", lambda: produce("broken"))
        assert calls == ["a", "broken", "broken"]

    asyncio.run(run())
