"""Detached processes owned by the launcher: started with a pid file, stopped by that pid.

A component is one server of the local stack. It knows how to prepare its data folder, the command
that runs it, how to tell that it really answers, and its version. The launcher only ever stops the
processes whose pid it recorded (and checks the pid still belongs to that command line).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path

import psutil

from portal_launcher.settings import StackSettings


class ComponentFailed(RuntimeError):
    """A component did not start or did not answer; the message says what and where to look."""


class Component(ABC):
    name: str = "component"

    def __init__(self, settings: StackSettings) -> None:
        self.settings = settings

    # -- layout -------------------------------------------------------------------------------
    @property
    def dir(self) -> Path:
        return self.settings.component_dir(self.name)

    @property
    def pid_file(self) -> Path:
        return self.dir / "pid"

    @property
    def log_file(self) -> Path:
        return self.dir / f"{self.name}.log"

    # -- what each component defines ----------------------------------------------------------
    def install(self) -> None:
        """Fetch or build what the server runs (jars, binaries), without data. Cached."""

    def prepare(self) -> None:
        """Resolve artifacts and initialise the data folder. Idempotent; runs before every start."""

    @abstractmethod
    def command(self) -> list[str]:
        """The command line that runs the server in the foreground."""

    def environment(self) -> dict[str, str]:
        return dict(os.environ)

    def cwd(self) -> Path:
        return self.dir

    @abstractmethod
    def probe(self) -> bool:
        """True when the server really answers (a request over its own protocol)."""

    def after_ready(self) -> None:
        """One-time set-up that needs the running server (buckets, topics, databases)."""

    def version(self) -> str:
        return "unknown"

    def endpoint(self) -> str:
        return ""

    # -- process management (shared) ------------------------------------------------------------
    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            proc = psutil.Process(pid)
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
        except psutil.NoSuchProcess:
            return None
        return pid

    def is_running(self) -> bool:
        return self.pid() is not None

    def start(self) -> None:
        if self.is_running():
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        self.prepare()
        log = self.log_file.open("ab")
        log.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} starting {self.name}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            self.command(),
            cwd=self.cwd(),
            env=self.environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # survives the launcher; stopped by pid
        )
        self.pid_file.write_text(str(proc.pid))

    def wait_ready(self, timeout_s: float | None = None) -> None:
        deadline = time.monotonic() + (timeout_s or self.settings.ready_timeout_s)
        while time.monotonic() < deadline:
            if not self.is_running():
                raise ComponentFailed(
                    f"{self.name} exited during start-up; last lines of {self.log_file}:\n"
                    + self.log_tail()
                )
            try:
                if self.probe():
                    return
            except Exception:  # noqa: S110 - not answering yet is the normal case while starting
                pass
            time.sleep(0.5)
        raise ComponentFailed(
            f"{self.name} did not answer at {self.endpoint()} within "
            f"{timeout_s or self.settings.ready_timeout_s:.0f}s; last lines of {self.log_file}:\n"
            + self.log_tail()
        )

    def stop(self, timeout_s: float = 60.0) -> bool:
        """Stop the recorded process group: SIGTERM, then SIGKILL. True when something was stopped."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        _terminate_tree(pid, timeout_s)
        self.pid_file.unlink(missing_ok=True)
        return True

    def kill(self) -> bool:
        """SIGKILL the recorded process tree at once (a crash, for fault tests): no shutdown
        hooks run. True when something was killed; ``start`` runs it again."""
        pid = self.pid()
        if pid is None:
            return False
        _terminate_tree(pid, timeout_s=0.0, sig=signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        return True

    def log_tail(self, lines: int = 40) -> str:
        try:
            content = self.log_file.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(content[-lines:])


def _terminate_tree(pid: int, timeout_s: float, sig: int = signal.SIGTERM) -> None:
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.send_signal(sig)
    _, alive = psutil.wait_procs(procs, timeout=timeout_s)
    for p in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    psutil.wait_procs(alive, timeout=10)


def wait_until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:  # noqa: S110
            pass
        time.sleep(0.5)
    raise ComponentFailed(f"timed out after {timeout_s:.0f}s waiting for {what}")
