"""Counts of each fault test, printed at the end of the run by the chaos conftest."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Counts:
    fault: str
    pushed: int  # articles whose push got a 2xx
    requests: int  # 2xx answers (new articles and new revisions)
    retries: int  # partner requests retried after a 5xx or a connection error
    published: int  # pushed articles public at their newest acknowledged revision
    searchable: int  # pushed articles found by search, with that revision's title
    duplicates: int
    lost: int
    redelivered: int  # the same article.published event seen again (consumers dedupe by id)
    seconds: float

    def line(self) -> str:
        return (
            f"chaos {self.fault}: pushed={self.pushed} published={self.published} "
            f"searchable={self.searchable} duplicates={self.duplicates} lost={self.lost} "
            f"(requests={self.requests} retries={self.retries} "
            f"redelivered={self.redelivered}, {self.seconds:.0f}s)"
        )


RESULTS: list[Counts] = []
