"""Wires pull integration into the ingest service (called from app.py)."""

from __future__ import annotations

import contextlib

from fastapi import APIRouter, FastAPI

from portal_ingest.intake_usecases import Ingestor
from portal_ingest.pull import api
from portal_ingest.pull.fetch import Fetcher
from portal_ingest.pull.health import PullHealth
from portal_ingest.pull.poller import Poller
from portal_ingest.pull.scheduler import Scheduler
from portal_ingest.pull.usecases import PullAdmin
from portal_ingest.settings import Settings
from portal_runtime.service import Service


class PullIntegration:
    def __init__(self, settings: Settings, service: Service, ingestor: Ingestor) -> None:
        self.settings = settings
        self.fetcher = Fetcher(settings)
        self.poller = Poller(settings, service.sessions, self.fetcher, ingestor)
        self.scheduler = Scheduler(settings, service.sessions, self.poller)
        self.admin = PullAdmin(settings, service.sessions, self.poller, self.scheduler)
        self.health = PullHealth(settings, service.sessions)
        service.background.append(self._run)

    async def _run(self) -> None:
        try:
            await self.scheduler.run()
        finally:
            with contextlib.suppress(Exception):
                await self.fetcher.aclose()

    def router(self) -> APIRouter:
        return api.router

    def install(self, app: FastAPI) -> None:
        api.install_pull_error_handlers(app)
        app.state.pull = self
