"""The per-machine build cache: a clone of the same sources finds the same entry, any change to
what an entry is built from gives another one, and entries appear whole even when several
checkouts build at once. No stack and no build tool needed."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from portal_launcher.build_cache import inputs_key, publish, staging_dir, staging_file
from portal_launcher.components import jaeger, kafka, opensearch


def _clone(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("target"))
    return dst


def test_same_sources_in_another_checkout_give_the_same_key(tmp_path: Path) -> None:
    a = _clone(opensearch.OPENSEARCH_JVM_DIR, tmp_path / "a")
    b = _clone(opensearch.OPENSEARCH_JVM_DIR, tmp_path / "b")
    files_a = [p for p in a.rglob("*") if p.is_file()]
    files_b = [p for p in b.rglob("*") if p.is_file()]
    assert inputs_key(a, files_a) == inputs_key(b, files_b)


def test_changed_content_or_name_gives_another_key(tmp_path: Path) -> None:
    (tmp_path / "pom.xml").write_text("<project/>")
    (tmp_path / "Main.java").write_text("class Main {}")
    files = [tmp_path / "pom.xml", tmp_path / "Main.java"]
    before = inputs_key(tmp_path, files)

    (tmp_path / "Main.java").write_text("class Main { }")
    edited = inputs_key(tmp_path, files)
    (tmp_path / "Main.java").rename(tmp_path / "Node.java")
    renamed = inputs_key(tmp_path, [tmp_path / "pom.xml", tmp_path / "Node.java"])

    assert len({before, edited, renamed}) == 3


def test_components_key_their_entries_by_their_own_inputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    os_dir = _clone(opensearch.OPENSEARCH_JVM_DIR, tmp_path / "opensearch")
    kafka_dir = _clone(kafka.KAFKA_JVM_DIR, tmp_path / "kafka")
    go_dir = _clone(jaeger.MODULE_DIR, tmp_path / "jaeger")
    monkeypatch.setattr(opensearch, "OPENSEARCH_JVM_DIR", os_dir)
    monkeypatch.setattr(opensearch, "_POM", os_dir / "pom.xml")
    monkeypatch.setattr(kafka, "KAFKA_JVM_DIR", kafka_dir)
    monkeypatch.setattr(kafka, "KAFKA_POM", kafka_dir / "pom.xml")
    monkeypatch.setattr(jaeger, "MODULE_DIR", go_dir)
    # A copy of the repository's sources finds the repository's entries.
    assert opensearch.sources_key() == _real_keys()[0]
    assert kafka.classpath_file().name == _real_keys()[1]
    assert jaeger.jaeger_binary().name == _real_keys()[2]

    java = next(p for p in (os_dir / "src").rglob("*.java"))
    java.write_text(java.read_text() + "\n// changed\n")
    (kafka_dir / "pom.xml").write_text((kafka_dir / "pom.xml").read_text() + "\n")
    (go_dir / "go.sum").write_text((go_dir / "go.sum").read_text() + "\n")
    assert opensearch.sources_key() != _real_keys()[0]
    assert kafka.classpath_file().name != _real_keys()[1]
    assert jaeger.jaeger_binary().name != _real_keys()[2]


def _real_keys() -> tuple[str, str, str]:
    real = Path(opensearch.__file__).resolve().parents[5] / "deploy"
    os_dir, kafka_pom, go_dir = (
        real / "jvm" / "opensearch",
        real / "jvm" / "kafka" / "pom.xml",
        real / "jaeger",
    )
    os_files = [os_dir / "pom.xml", *(p for p in (os_dir / "src").rglob("*") if p.is_file())]
    return (
        inputs_key(os_dir, os_files),
        f"classpath-{inputs_key(kafka_pom.parent, [kafka_pom])}.txt",
        f"jaeger-{jaeger.JAEGER_VERSION}-{inputs_key(go_dir, [go_dir / 'go.mod', go_dir / 'go.sum'])}",
    )


def test_a_folder_entry_is_published_whole_once_when_builds_race(tmp_path: Path) -> None:
    final = tmp_path / "cache" / "opensearch" / "k"
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def build(n: int) -> None:
        try:
            staged = staging_dir(final)
            (staged / "lib").mkdir()
            for i in range(20):
                (staged / "lib" / f"dep-{i}.jar").write_text(f"builder {n}")
            (staged / "node.jar").write_text(f"builder {n}")
            start.wait()
            publish(staged, final)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=build, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    winner = (final / "node.jar").read_text()
    # Every file of the entry comes from one builder: no mix, nothing missing.
    assert {p.read_text() for p in (final / "lib").iterdir()} == {winner}
    assert len(list((final / "lib").iterdir())) == 20
    # The losers' staging folders are gone.
    assert [p.name for p in final.parent.iterdir()] == ["k"]


def test_a_file_entry_is_replaced_in_one_step(tmp_path: Path) -> None:
    final = tmp_path / "kafka" / "classpath-k.txt"
    first, second = staging_file(final), staging_file(final)
    assert first != second  # two resolvers never write into the same file
    first.write_text("a.jar:b.jar")
    second.write_text("a.jar:b.jar")
    publish(first, final)
    publish(second, final)
    assert final.read_text() == "a.jar:b.jar"
    assert [p.name for p in final.parent.iterdir()] == ["classpath-k.txt"]
