"""A started service's garbage collector: start-up objects frozen out of collections, start-up
garbage collected first, a wider young generation. Run in a fresh interpreter (freezing is for
the process's life)."""

from __future__ import annotations

import json
import subprocess
import sys

PROGRAM = """
import gc, json, weakref
from portal_runtime import heap

class Node:
    pass

kept = [Node() for _ in range(1000)]
garbage = Node()
garbage.me = garbage  # a cycle only the collector frees
gone = weakref.ref(garbage)
del garbage
before = gc.get_freeze_count()
heap.settle()
print(json.dumps({
    "before": before,
    "frozen": gc.get_freeze_count(),
    "cycle_freed": gone() is None,
    "young": gc.get_threshold()[0],
}))
"""


def test_settle_freezes_what_the_service_keeps_after_collecting_its_garbage() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROGRAM], capture_output=True, text=True, check=True
    ).stdout
    state = json.loads(out)
    assert state["before"] == 0
    assert state["frozen"] >= 1000  # at least what the program keeps
    assert state["cycle_freed"] is True
    assert state["young"] == 10_000
