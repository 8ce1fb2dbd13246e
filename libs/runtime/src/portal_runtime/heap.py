"""The garbage collector of a long-running service, set once its start-up is done.

A service keeps a few hundred thousand objects from start-up for ever (modules, schemas,
compiled statements, clients), and every full collection walked all of them again: a stream of
batches, whose events outlive a few young collections, set off full ones often. Frozen, the
start-up objects are left out of every collection; a larger young generation lets a batch's
objects die young (freed by reference counting) instead of being promoted and walked again.
Cycles are still collected, only less often.
"""

from __future__ import annotations

import gc

# Young collections after this many new container objects (CPython's default: 700).
YOUNG_THRESHOLD = 10_000


def settle() -> None:
    """Collect the start-up garbage, then freeze what is left and widen the young generation
    (call once, when the service has started)."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
