"""A memo for pure functions of one word or token, bounded in memory.

Articles repeat their words, so the per-word steps of text repair are worth caching. A cache
keyed by whatever a partner sends is bounded by its entry count only; one long run without
spaces would make each entry as big as a body. Only calls whose text arguments are word-sized
are kept, so the cache's memory is bounded by ``maxsize`` x ``longest``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


def word_cache(maxsize: int, *, longest: int = 64) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """``functools.lru_cache(maxsize)`` for calls whose ``str`` arguments are all at most
    ``longest`` characters; longer ones are computed every time (they rarely repeat)."""

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        cached = functools.lru_cache(maxsize=maxsize)(fn)

        @functools.wraps(fn)
        def call(*args: P.args, **kwargs: P.kwargs) -> R:
            # (the positional arguments alone first: no tuple of them all built per call)
            for value in args:
                if isinstance(value, str) and len(value) > longest:
                    return fn(*args, **kwargs)
            for value in kwargs.values():
                if isinstance(value, str) and len(value) > longest:
                    return fn(*args, **kwargs)
            return cached(*args, **kwargs)  # type: ignore[arg-type]  # the arguments are hashable

        return call

    return decorate
