"""Where each original payload is archived: alone, or in a pack with others (pure logic).

Every new revision's payload is archived exactly as received, before anything refers to it.
One object per payload made the archive the object store's busiest writer (a PUT per article),
so the payloads accepted together (one group of concurrent pushes, one partner topic batch) are
written as one object per agency: their bytes one after the other, each event and revision row
naming the object and its payload's byte range. A pack is named by the hash of its bytes, so a
retried group or batch writes the same object again rather than another one; a payload alone
keeps its own name (``domain.raw_object_key``) and no range, as before packs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

PACK_CONTENT_TYPE = "application/octet-stream"


@dataclass(frozen=True)
class RawPlace:
    """Where one payload is: the object, and its bytes there (None: the whole object)."""

    key: str
    offset: int | None = None
    length: int | None = None


@dataclass(frozen=True)
class RawObject:
    """One object to write, and the place of each payload in it, in the order given."""

    key: str
    data: bytes
    content_type: str
    places: tuple[RawPlace, ...]


def pack_key(source: str, data: bytes) -> str:
    """``raw/<source>/<sha256>.pack``: named by its bytes (a payload alone has one more key
    segment, ``raw/<source>/<external id>/<sha256>.json``, so the two never meet)."""
    return f"raw/{source}/{hashlib.sha256(data).hexdigest()}.pack"


def alone(key: str, raw: bytes) -> RawObject:
    """One original as its own object, under its own key."""
    return RawObject(key, raw, "application/json", (RawPlace(key),))


def plan(
    source: str, payloads: Sequence[tuple[str, bytes]], max_pack_bytes: int
) -> list[RawObject]:
    """The objects archiving ``payloads`` of one agency, each given as (its own key, bytes):
    packs of consecutive payloads up to ``max_pack_bytes`` each, and a payload that would be
    alone in its pack (or is larger than a pack) as its own object under its own key."""
    runs: list[list[tuple[str, bytes]]] = []
    size = 0
    for key, raw in payloads:
        if not runs or size + len(raw) > max_pack_bytes:
            runs.append([])
            size = 0
        runs[-1].append((key, raw))
        size += len(raw)
    objects: list[RawObject] = []
    for run in runs:
        if len(run) == 1:
            objects.append(alone(*run[0]))
            continue
        data = b"".join(raw for _, raw in run)
        key = pack_key(source, data)
        places: list[RawPlace] = []
        offset = 0
        for _, raw in run:
            places.append(RawPlace(key, offset, len(raw)))
            offset += len(raw)
        objects.append(RawObject(key, data, PACK_CONTENT_TYPE, tuple(places)))
    return objects
