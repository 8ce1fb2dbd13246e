"""Several instances of a service: their ports, names and the `--instances` option."""

from __future__ import annotations

from pathlib import Path

import pytest

from portal_launcher.services import (
    MAX_INSTANCES,
    parse_instances,
    process,
    running_instances,
    service_port,
)
from portal_launcher.settings import StackSettings


def _settings(tmp_path: Path) -> StackSettings:
    return StackSettings(data_dir=tmp_path, port_base=39000)  # type: ignore[arg-type]


def test_each_instance_has_its_own_port_derived_from_the_service_port(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    assert service_port(settings, "normalize") == 39042
    assert service_port(settings, "normalize", 2) == 39442
    assert service_port(settings, "normalize", 3) == 39452
    ports = {
        service_port(settings, name, n)
        for name in ("ingest", "normalize", "moderation", "publishing", "engagement", "search")
        for n in range(1, MAX_INSTANCES + 1)
    } | {service_port(settings, "web", n) for n in range(1, MAX_INSTANCES + 1)}
    assert len(ports) == 7 * MAX_INSTANCES  # no two instances share a port
    assert max(ports) < 39000 + 1000  # within this stack's range of ports
    default = StackSettings(data_dir=tmp_path, port_base=None)  # type: ignore[arg-type]
    assert service_port(default, "publishing", 2) == 8404


def test_an_instance_names_itself_and_keeps_the_settings(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    first, second = process(settings, "publishing"), process(settings, "publishing", 2)
    assert (first.name, second.name) == ("service-publishing", "service-publishing-2")
    env1, env2 = first.environment(), second.environment()
    assert (env1["HTTP_PORT"], env2["HTTP_PORT"]) == ("39044", "39444")
    assert (env1["SERVICE_INSTANCE_ID"], env2["SERVICE_INSTANCE_ID"]) == (
        "publishing-1",
        "publishing-2",
    )
    same = {"DATABASE_URL", "KAFKA_USERNAME", "KAFKA_PASSWORD", "ADMIN_TOKEN", "S3_ACCESS_KEY"}
    assert {k: env1[k] for k in same} == {k: env2[k] for k in same}
    purger = process(settings, "edge-purger", 2)
    assert purger.environment()["HTTP_PORT"] == "39448"


def test_instances_with_a_pid_file_are_found(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    assert running_instances(settings, "normalize") == [1]
    for n in (2, 3):
        (tmp_path / f"service-normalize-{n}").mkdir()
    (tmp_path / "service-normalize-3" / "pid").write_text("1")
    assert running_instances(settings, "normalize") == [1, 3]


def test_the_instances_option() -> None:
    assert parse_instances("normalize=3, publishing=2") == {"normalize": 3, "publishing": 2}
    assert parse_instances("") == {}
    with pytest.raises(ValueError, match="not a service"):
        parse_instances("normalise=2")
    with pytest.raises(ValueError, match="SERVICE=COUNT"):
        parse_instances("normalize")
    with pytest.raises(ValueError, match="between 1 and"):
        parse_instances(f"normalize={MAX_INSTANCES + 1}")
