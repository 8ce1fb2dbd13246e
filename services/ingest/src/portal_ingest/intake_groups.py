"""Group commit for single pushes: concurrent requests, each with one message, accepted together.

Each request waits for its own answer. The requests that arrive while a group forms (at most
``max_wait_s`` after the first, or until ``max_items`` have come) are accepted together by
``Ingestor.submit_group``: one state read, one transaction and one statement per step instead
of each of them per request, with the same rules as one at a time (the members are decided in
order; a race with another writer is decided again under the row lock). At most ``in_flight``
groups are under way at once; requests arriving meanwhile form the next group, which starts as
soon as one ends.

A member that is refused, or whose raw archive write fails, gets its own answer; the others go
on. If the group's read or transaction fails, each member is submitted again alone, so that a
member that makes a statement fail fails alone.
"""

from __future__ import annotations

import asyncio
import contextvars
from dataclasses import dataclass

from opentelemetry import context as otel_context

from portal_contracts.articles import Channel
from portal_contracts.partner import PartnerArticleMessage
from portal_ingest.intake_usecases import Ingestor, IntakeResult, Receipt, Submission
from portal_runtime.logs import get_logger

log = get_logger(__name__)


@dataclass(eq=False)
class _Member:
    submission: Submission
    answer: asyncio.Future[Receipt]  # or the refusal or failure, as its exception


class PushGroups:
    def __init__(
        self, ingestor: Ingestor, *, max_items: int, max_wait_s: float, in_flight: int
    ) -> None:
        self.ingestor = ingestor
        self.max_items = max_items
        self.max_wait_s = max_wait_s
        self.in_flight = in_flight
        self._forming: list[_Member] = []
        self._timer: asyncio.TimerHandle | None = None
        self._running: set[asyncio.Task[None]] = set()

    async def submit(
        self, source: str, message: PartnerArticleMessage, channel: Channel, raw: bytes
    ) -> Receipt:
        """``Ingestor.submit``'s answer, the message accepted among concurrent ones."""
        if self.max_items <= 1:
            return await self.ingestor.submit(source, message, channel, raw)
        loop = asyncio.get_running_loop()
        member = _Member(
            Submission(source, message, channel, raw, trace=otel_context.get_current()),
            loop.create_future(),
        )
        self._forming.append(member)
        if len(self._forming) >= self.max_items:
            self._start()
        elif self._timer is None:
            self._timer = loop.call_later(self.max_wait_s, self._start)
        return await member.answer

    def _start(self) -> None:
        """Start the forming group, if a slot is free (else the next group to end starts it)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._forming and len(self._running) < self.in_flight:
            # A request that went away before its group started is not accepted.
            members = [m for m in self._forming[: self.max_items] if not m.answer.done()]
            del self._forming[: self.max_items]
            if not members:
                continue
            # A context of its own: the group's work belongs to no one request's trace.
            task = asyncio.create_task(self._accept(members), context=contextvars.Context())
            self._running.add(task)
            task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if self._forming:
            self._start()

    async def _accept(self, members: list[_Member]) -> None:
        try:
            try:
                answers = await self.ingestor.submit_group([m.submission for m in members])
            except Exception as exc:
                if len(members) == 1:
                    _answer(members[0], exc)
                    return
                log.warning("push_group_failed", members=len(members), error=repr(exc))
                await asyncio.gather(*(self._accept_alone(m) for m in members))
                return
            for member, answer in zip(members, answers, strict=True):
                _answer(member, answer)
        finally:
            for member in members:  # only when the group itself was cancelled
                member.answer.cancel()

    async def _accept_alone(self, member: _Member) -> None:
        sub = member.submission
        token = None if sub.trace is None else otel_context.attach(sub.trace)
        try:
            answer: IntakeResult | Exception = await self.ingestor.submit(
                sub.source, sub.message, sub.channel, sub.raw
            )
        except Exception as exc:
            answer = exc
        finally:
            if token is not None:
                otel_context.detach(token)
        _answer(member, answer)


def _answer(member: _Member, answer: IntakeResult | Exception) -> None:
    if member.answer.done():
        return  # the request went away
    if isinstance(answer, Exception):
        member.answer.set_exception(answer)
    else:
        member.answer.set_result(answer)
