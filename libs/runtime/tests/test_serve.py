"""A service process on SIGTERM: readiness fails at once while HTTP is still served for the
shutdown delay, then the process ends on its own; a second signal ends it at once."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx

APP = """
from portal_runtime.serve import serve
from portal_runtime.service import HttpService
from portal_runtime.settings import ServiceSettings

settings = ServiceSettings(service_name="demo", http_port={port}, shutdown_delay_s={delay})
serve(HttpService(settings).create_app(title="demo", description="demo"), settings)
"""


def _start(delay_s: float) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    proc = subprocess.Popen(
        [sys.executable, "-c", APP.format(port=port, delay=delay_s)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("the demo service did not start")


def test_sigterm_fails_readiness_first_then_the_process_ends() -> None:
    proc, url = _start(delay_s=3.0)
    try:
        proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 2.5
        ready = httpx.get(f"{url}/readyz", timeout=2)
        while ready.status_code == 200 and time.monotonic() < deadline:
            ready = httpx.get(f"{url}/readyz", timeout=2)
        assert ready.status_code == 503
        assert ready.json()["status"] == "draining"
        assert httpx.get(f"{url}/healthz", timeout=2).status_code == 200  # still serving
        proc.wait(timeout=30)  # it ends on its own after the delay
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_second_signal_ends_it_at_once() -> None:
    proc, _ = _start(delay_s=60.0)
    try:
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)  # long before the 60 s delay
    finally:
        if proc.poll() is None:
            proc.kill()
