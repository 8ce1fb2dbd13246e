"""The trace backend of the local stack: Jaeger v2 (an OpenTelemetry Collector distribution).

Built once from the Go module proxy (`deploy/jaeger/go.mod` pins the version). The binary is kept in
the user's cache folder, shared by every checkout (~/.cache/portal/jaeger, or PORTAL_JAEGER_CACHE),
under a name keyed by go.mod and go.sum (see build_cache). One process receives OTLP from the services (traces and
metrics), keeps traces in Badger under the stack's data folder (they survive restarts, 72 h), and
serves Jaeger's query API (and the Jaeger UI when a build of its assets is present: the UI is not
part of the Go module and is not published to any package registry, so none ships here). The OTLP metrics it receives are re-exposed for Prometheus
on one port, the local stand-in for the collector of docker-compose.

Started only when asked: `portal stack up --with-traces` or PORTAL_STACK_TRACES=1. While it runs,
the launcher points every service's OTEL_EXPORTER_OTLP_ENDPOINT at it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import httpx

from portal_launcher.build_cache import USER_CACHE, inputs_key, publish, staging_dir
from portal_launcher.process import Component, ComponentFailed
from portal_launcher.settings import REPO_ROOT

JAEGER_VERSION = "v1.76.0"  # Jaeger v2.13.0; keep equal to the version in deploy/jaeger/go.mod
JAEGER_PACKAGE = "github.com/jaegertracing/jaeger/cmd/jaeger"
MODULE_DIR = REPO_ROOT / "deploy" / "jaeger"
BIN_DIR = Path(os.environ.get("PORTAL_JAEGER_CACHE") or USER_CACHE / "jaeger")
# The Jaeger UI is not part of the Go module (release binaries embed it at build time). An
# operator may place a build of jaeger-ui at the same version here; it is served when present.
UI_ARCHIVE = BIN_DIR / f"jaeger-ui-{JAEGER_VERSION}.tar.gz"
SPAN_TTL = "72h"
_BUILD_TIMEOUT_S = 1800.0


def module_key() -> str:
    """Key of what the build reads: the tool module's go.mod and go.sum."""
    return inputs_key(MODULE_DIR, [MODULE_DIR / "go.mod", MODULE_DIR / "go.sum"])


def jaeger_binary() -> Path:
    return BIN_DIR / f"jaeger-{JAEGER_VERSION}-{module_key()}"


def ui_assets_dir() -> Path:
    return BIN_DIR / f"ui-{JAEGER_VERSION}"


def build_jaeger(log: Path | None = None) -> Path:
    """Build the Jaeger binary from the pinned module (cached; the Go build cache makes a rebuild
    after a fresh checkout quick)."""
    binary = jaeger_binary()
    if binary.is_file():
        return binary
    go = shutil.which("go")
    if go is None:
        raise ComponentFailed(
            "building Jaeger needs Go (Debian's golang-go; deploy/system-deps.sh installs it)"
        )
    print(
        f"jaeger: building the trace backend ({JAEGER_PACKAGE} {JAEGER_VERSION}) from the Go "
        f"module proxy, because traces were asked for (--with-traces, PORTAL_STACK_TRACES=1, or "
        f"a test of traces). Once per machine, a few minutes; cached in {BIN_DIR}.",
        file=sys.stderr,
        flush=True,
    )
    # go build writes its output itself: give it a fresh folder of its own next to the cache entry.
    staged = staging_dir(binary)
    partial = staged / "jaeger"
    out = log.open("ab") if log is not None else subprocess.DEVNULL
    try:
        result = subprocess.run(
            [go, "build", "-trimpath", "-o", str(partial), JAEGER_PACKAGE],
            cwd=MODULE_DIR,
            env={**os.environ, "GOFLAGS": "-mod=readonly", "CGO_ENABLED": "0"},
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=_BUILD_TIMEOUT_S,
            check=False,
        )
    finally:
        if log is not None and hasattr(out, "close"):
            out.close()
    if result.returncode != 0 or not partial.is_file():
        shutil.rmtree(staged, ignore_errors=True)
        where = f"; see {log}" if log is not None else ""
        raise ComponentFailed(f"go build {JAEGER_PACKAGE} failed (exit {result.returncode}){where}")
    publish(partial, binary)
    shutil.rmtree(staged, ignore_errors=True)
    return binary


def unpack_ui() -> Path | None:
    """The UI assets folder, unpacked from the kept archive once; None without the archive."""
    target = ui_assets_dir()
    if (target / "index.html").is_file():
        return target
    if not UI_ARCHIVE.is_file():
        return None
    partial = staging_dir(target)
    try:
        with tarfile.open(UI_ARCHIVE) as archive:
            archive.extractall(partial, filter="data")
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    publish(partial, target)
    return target


class JaegerComponent(Component):
    name = "jaeger"

    @property
    def config_file(self) -> Path:
        return self.dir / "jaeger.yaml"

    @property
    def storage_dir(self) -> Path:
        return self.dir / "badger"

    def install(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        build_jaeger(self.dir / "build.log")
        unpack_ui()

    def prepare(self) -> None:
        self.install()
        for sub in ("keys", "values"):
            (self.storage_dir / sub).mkdir(parents=True, exist_ok=True)
        # JSON is YAML: the collector's config loader reads it as it is.
        self.config_file.write_text(json.dumps(self.config(), indent=2))

    def config(self) -> dict[str, Any]:
        s = self.settings
        query: dict[str, Any] = {
            "storage": {"traces": "local"},
            "http": {"endpoint": f"{s.host}:{s.jaeger_ui_port}"},
            "grpc": {"endpoint": f"{s.host}:{s.jaeger_query_grpc_port}"},
        }
        ui = unpack_ui()
        if ui is not None:
            query["ui"] = {"assets_path": str(ui)}
        return {
            "service": {
                "extensions": ["jaeger_storage", "jaeger_query"],
                "pipelines": {
                    "traces": {
                        "receivers": ["otlp"],
                        "processors": ["batch"],
                        "exporters": ["jaeger_storage_exporter"],
                    },
                    "metrics": {
                        "receivers": ["otlp"],
                        "processors": ["batch"],
                        "exporters": ["prometheus"],
                    },
                },
                # Jaeger's own metrics would take another fixed port (8888) on every stack.
                "telemetry": {
                    "resource": {"service.name": "jaeger"},
                    "metrics": {"level": "none"},
                    "logs": {"level": "info"},
                },
            },
            "extensions": {
                "jaeger_query": query,
                "jaeger_storage": {
                    "backends": {
                        "local": {
                            "badger": {
                                "directories": {
                                    "keys": str(self.storage_dir / "keys"),
                                    "values": str(self.storage_dir / "values"),
                                },
                                "ephemeral": False,
                                "ttl": {"spans": SPAN_TTL},
                            }
                        }
                    }
                },
            },
            "receivers": {
                "otlp": {
                    "protocols": {
                        "http": {"endpoint": f"{s.host}:{s.jaeger_otlp_http_port}"},
                        "grpc": {"endpoint": f"{s.host}:{s.jaeger_otlp_grpc_port}"},
                    }
                }
            },
            "processors": {"batch": {"timeout": "200ms"}},
            "exporters": {
                "jaeger_storage_exporter": {"trace_storage": "local"},
                "prometheus": {
                    "endpoint": f"{s.host}:{s.jaeger_metrics_port}",
                    "resource_to_telemetry_conversion": {"enabled": True},
                },
            },
        }

    def command(self) -> list[str]:
        return [str(jaeger_binary()), "--config", f"file:{self.config_file}"]

    def probe(self) -> bool:
        resp = httpx.get(f"{self.endpoint()}/api/services", timeout=3.0)
        if resp.status_code != 200:
            return False
        # The OTLP receiver starts with the query service; make sure it takes connections too.
        otlp = httpx.post(
            f"{self.settings.jaeger_otlp_endpoint}/v1/traces",
            content=b"",
            headers={"Content-Type": "application/x-protobuf"},
            timeout=3.0,
        )
        return otlp.status_code < 500

    def version(self) -> str:
        return JAEGER_VERSION

    def endpoint(self) -> str:
        return self.settings.jaeger_ui_url
