"""The load benchmark's tools: nginx serving the captured responses, and wrk."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from string import Template
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
NGINX = os.environ.get("NGINX", "/usr/sbin/nginx")
WRK = os.environ.get("WRK", "/usr/bin/wrk")


def start_nginx(
    prefix: Path, host: str, port: int, workers: str, map_lines: list[str]
) -> subprocess.Popen[bytes]:
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / "tmp" / sub).mkdir(parents=True, exist_ok=True)
    (prefix / "targets.map").write_text("\n".join(map_lines) + "\n", encoding="utf-8")
    conf = Template((HERE / "nginx.conf.template").read_text()).safe_substitute(
        prefix=prefix, host=host, port=port, workers=workers
    )
    (prefix / "nginx.conf").write_text(conf)
    # Run as root (as CI does), nginx's workers drop to 'nobody': they must be able to read.
    for path in [prefix, *prefix.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    cmd = [
        NGINX,
        "-p",
        str(prefix),
        "-c",
        str(prefix / "nginx.conf"),
        "-e",
        str(prefix / "error.log"),
    ]
    check = subprocess.run([*cmd, "-t"], capture_output=True, text=True)
    if check.returncode != 0:
        raise RuntimeError(f"nginx configuration refused:\n{check.stderr}")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"nginx exited: {proc.stderr.read().decode() if proc.stderr else ''}"
            )
        try:
            httpx.get(f"http://{host}:{port}/", timeout=1.0)
            return proc
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError("nginx does not answer")


def stop_process(proc: subprocess.Popen[bytes] | subprocess.Popen[str], sig: int) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, sig)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def wrk_command(
    url: str, paths_file: Path, threads: int, connections: int, seconds: int, timeout: int
) -> list[str]:
    return [
        WRK,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        f"--timeout={timeout}s",
        "-s",
        str(HERE / "rotate.lua"),
        url,
        "--",
        str(paths_file),
        str(threads),
    ]


def wrk(
    url: str, paths_file: Path, threads: int, connections: int, seconds: int, timeout: int
) -> dict[str, Any]:
    """One closed-loop run of wrk; its figures."""
    cmd = wrk_command(url, paths_file, threads, connections, seconds, timeout)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=seconds + 60)
    finally:
        stop_process(proc, signal.SIGTERM)
    return wrk_figures(out, f"exit {proc.returncode}: {err}")


class BackgroundWrk:
    """wrk running until stopped (load while something else is measured)."""

    def __init__(
        self, url: str, paths_file: Path, threads: int, connections: int, timeout: int
    ) -> None:
        cmd = wrk_command(url, paths_file, threads, connections, 3600, timeout)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def stop(self) -> dict[str, Any]:
        """Interrupted, wrk still reports what it measured until then."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            out, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            stop_process(self.proc, signal.SIGKILL)
            out, err = self.proc.communicate()
        return wrk_figures(out, err)


def wrk_figures(out: str, context: str) -> dict[str, Any]:
    for line in out.splitlines():
        if line.startswith("WRK_JSON "):
            raw: dict[str, Any] = json.loads(line[len("WRK_JSON ") :])
            secs = raw["duration_us"] / 1e6
            return {
                "requests": raw["requests"],
                "rps": raw["requests"] / secs if secs else 0.0,
                "p50_ms": raw["p50_us"] / 1000,
                "p90_ms": raw["p90_us"] / 1000,
                "p99_ms": raw["p99_us"] / 1000,
                "max_ms": raw["max_us"] / 1000,
                "errors": raw["connect"] + raw["read"] + raw["write"] + raw["timeout"],
                "non_2xx": raw["status"],  # wrk counts statuses above 399
                "mb_per_s": raw["bytes"] / secs / 1e6 if secs else 0.0,
            }
    raise RuntimeError(f"wrk printed no figures ({context}):\n{out}")
