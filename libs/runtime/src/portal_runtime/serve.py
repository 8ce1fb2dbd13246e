"""Running a service's app under uvicorn, with a graceful shutdown on SIGTERM (or Ctrl-C).

On the first signal the process:

1. fails its readiness at once (``/readyz`` answers 503 ``draining``) and gives up its shared
   work (``HttpService.begin_shutdown``): its consumers finish or abandon their batch, commit
   what is durable and leave their groups, so their partitions move to the other instances
   within seconds;
2. keeps serving HTTP for ``SHUTDOWN_DELAY_S`` (0 locally; behind a load balancer, long enough
   for it to see the failed readiness), then closes its port and lets requests in progress end;
3. ends the app's lifespan (``HttpService.drain``, bounded by ``SHUTDOWN_DRAIN_S``): the outbox
   relay sends what this process committed and stops between two rounds; the background jobs
   stop, the clients close and the telemetry is flushed.

A second signal exits at once.

Once the app has started, its garbage collector is settled (``heap.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from types import FrameType
from typing import Any

import uvicorn
from fastapi import FastAPI

from portal_runtime import heap
from portal_runtime.logs import get_logger
from portal_runtime.settings import ServiceSettings

log = get_logger(__name__)


class _GracefulServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: FastAPI, delay_s: float) -> None:
        super().__init__(config)
        self._app = app
        self._delay_s = delay_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._shutting_down = False

    async def serve(self, sockets: Any = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        heap.settle()  # the app has started: what it keeps from now on is its own

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._shutting_down or self._loop is None:
            super().handle_exit(sig, frame)  # a second signal: leave now
            if self._shutting_down:
                self.force_exit = True
            return
        self._shutting_down = True
        self._captured_signals.append(sig)  # uvicorn raises it again once it has stopped
        self._loop.call_soon_threadsafe(self._begin, signal.Signals(sig).name)

    def _begin(self, name: str) -> None:
        service = getattr(self._app.state, "service", None)
        log.info("shutdown_begins", signal=name, delay_s=self._delay_s)
        if service is not None:
            service.begin_shutdown()
        if self._delay_s <= 0:
            self.should_exit = True
            return
        assert self._loop is not None
        self._loop.call_later(self._delay_s, self._close)

    def _close(self) -> None:
        self.should_exit = True


def serve(app: FastAPI, settings: ServiceSettings, **uvicorn_options: Any) -> None:
    """Serve ``app`` on the settings' host and port until SIGTERM or SIGINT (see above)."""
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        proxy_headers=False,  # X-Forwarded-For only from TRUSTED_PROXIES (Service.create_app)
        **uvicorn_options,
    )
    server = _GracefulServer(config, app, settings.shutdown_delay_s)
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
