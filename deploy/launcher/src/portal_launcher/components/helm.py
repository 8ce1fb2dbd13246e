"""Helm, the chart's tool (deploy/helm/portal): built once from the Go module proxy at a pinned
version and cached in the user's cache folder, shared by every checkout (`~/.cache/portal/helm`,
or under `PORTAL_CACHE`, or `PORTAL_HELM_CACHE`), like Jaeger. Only the chart's tests need it, so
the first of them builds it (minutes, once per machine); `make run` never does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from portal_launcher.build_cache import USER_CACHE
from portal_launcher.process import ComponentFailed

HELM_VERSION = "v4.3.2"
HELM_PACKAGE = "helm.sh/helm/v4/cmd/helm"
BIN_DIR = Path(os.environ.get("PORTAL_HELM_CACHE") or USER_CACHE / "helm")
_BUILD_TIMEOUT_S = 1800.0


def helm_binary() -> Path:
    return BIN_DIR / f"helm-{HELM_VERSION}"


def build_helm(log: Path | None = None) -> Path:
    """`go install` the pinned Helm into the cache (nothing to do when it is there)."""
    binary = helm_binary()
    if binary.is_file():
        return binary
    go = shutil.which("go")
    if go is None:
        raise ComponentFailed(
            "building Helm needs Go (Debian's golang-go; deploy/system-deps.sh installs it)"
        )
    staging = BIN_DIR / f"build-{HELM_VERSION}"
    staging.mkdir(parents=True, exist_ok=True)
    out = log.open("ab") if log is not None else subprocess.DEVNULL
    try:
        result = subprocess.run(
            [go, "install", "-trimpath", f"{HELM_PACKAGE}@{HELM_VERSION}"],
            cwd=BIN_DIR,
            env={**os.environ, "GOBIN": str(staging), "CGO_ENABLED": "0", "GOFLAGS": ""},
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=_BUILD_TIMEOUT_S,
            check=False,
        )
    finally:
        if log is not None and hasattr(out, "close"):
            out.close()
    built = staging / "helm"
    if result.returncode != 0 or not built.is_file():
        where = f"; see {log}" if log is not None else ""
        raise ComponentFailed(
            f"go install {HELM_PACKAGE}@{HELM_VERSION} failed (exit {result.returncode}){where}"
        )
    built.rename(binary)
    shutil.rmtree(staging, ignore_errors=True)
    return binary
