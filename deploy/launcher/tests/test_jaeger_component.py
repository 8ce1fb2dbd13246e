"""The trace backend component: its ports follow the stack's port base, it is started only when
asked, and its configuration keeps traces under the stack's data folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from portal_launcher import stack
from portal_launcher.components.jaeger import UI_ARCHIVE, JaegerComponent
from portal_launcher.services import service_environment
from portal_launcher.settings import StackSettings


def _settings(tmp_path: Path, **extra: object) -> StackSettings:
    return StackSettings(data_dir=tmp_path, port_base=47000, **extra)  # type: ignore[arg-type]


def test_ports_follow_the_port_base(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    assert (s.jaeger_ui_port, s.jaeger_otlp_http_port, s.jaeger_otlp_grpc_port) == (
        47050,
        47051,
        47052,
    )
    assert s.jaeger_ui_url == "http://127.0.0.1:47050"
    assert s.jaeger_otlp_endpoint == "http://127.0.0.1:47051"


def test_started_only_when_asked_but_always_stopped(tmp_path: Path) -> None:
    off = _settings(tmp_path)
    on = _settings(tmp_path, traces=True)
    assert not any(isinstance(c, JaegerComponent) for c in stack.infrastructure(off))
    assert any(isinstance(c, JaegerComponent) for c in stack.infrastructure(on))
    # `stack down` and `stack logs` know it either way.
    assert any(isinstance(c, JaegerComponent) for c in stack.all_components(off))


def test_config_stores_traces_in_the_data_folder_and_listens_on_loopback(tmp_path: Path) -> None:
    comp = JaegerComponent(_settings(tmp_path))
    config = comp.config()
    badger = config["extensions"]["jaeger_storage"]["backends"]["local"]["badger"]
    assert Path(badger["directories"]["keys"]).is_relative_to(tmp_path)
    assert badger["ephemeral"] is False
    otlp = config["receivers"]["otlp"]["protocols"]
    assert otlp["http"]["endpoint"] == "127.0.0.1:47051"
    assert config["extensions"]["jaeger_query"]["http"]["endpoint"] == "127.0.0.1:47050"
    assert set(config["service"]["pipelines"]) == {"traces", "metrics"}
    if UI_ARCHIVE.is_file():
        assert Path(config["extensions"]["jaeger_query"]["ui"]["assets_path"]).is_dir()


def test_services_link_traces_and_export_only_while_jaeger_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    s = _settings(tmp_path)
    env = service_environment(s, "ingest")
    # Journey links open the desk's journey page, which draws the trace from Jaeger's API.
    assert env["TRACES_UI_URL"] == (
        f"http://127.0.0.1:{s.moderation_port}/desk/journey/{{article_id}}#trace-{{trace_id}}"
    )
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in env  # nothing runs in this data folder
    monkeypatch.setattr(JaegerComponent, "is_running", lambda self: True)
    assert service_environment(s, "ingest")["OTEL_EXPORTER_OTLP_ENDPOINT"] == s.jaeger_otlp_endpoint
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
    assert service_environment(s, "ingest")["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://127.0.0.1:1"
