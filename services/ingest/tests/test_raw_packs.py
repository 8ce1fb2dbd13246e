"""Where the originals accepted together are archived (pure logic)."""

from __future__ import annotations

from portal_ingest.raw_packs import PACK_CONTENT_TYPE, RawPlace, pack_key, plan


def test_originals_of_one_agency_are_one_pack_each_at_its_range() -> None:
    originals = [
        ("raw/s/a/1.json", "Tin một".encode()),
        ("raw/s/b/2.json", b"\x00\xff"),
        ("raw/s/c/3.json", b""),
    ]
    [pack] = plan("s", originals, max_pack_bytes=1 << 20)

    assert pack.key == pack_key("s", pack.data) and pack.key.endswith(".pack")
    assert pack.content_type == PACK_CONTENT_TYPE
    for (_, raw), place in zip(originals, pack.places, strict=True):
        assert place.offset is not None and place.length is not None
        assert pack.data[place.offset : place.offset + place.length] == raw


def test_the_same_originals_make_the_same_pack() -> None:
    originals = [("raw/s/a/1.json", b"one"), ("raw/s/b/2.json", b"two")]
    assert plan("s", originals, 1024) == plan("s", list(originals), 1024)
    assert plan("s", originals, 1024)[0].key != plan("s", originals[::-1], 1024)[0].key


def test_a_pack_is_split_at_its_size_and_an_original_alone_keeps_its_own_object() -> None:
    originals = [("k1", b"x" * 600), ("k2", b"y" * 600), ("k3", b"z" * 300), ("k4", b"w" * 2000)]
    objects = plan("s", originals, max_pack_bytes=1000)

    assert [len(o.places) for o in objects] == [1, 2, 1]
    assert objects[0].places == (RawPlace("k1"),) and objects[0].data == b"x" * 600
    assert objects[1].places[1] == RawPlace(objects[1].key, 600, 300)
    assert objects[2].key == "k4" and objects[2].content_type == "application/json"
