"""A TCP proxy on loopback that can make the server behind it slow (for tests).

Every chunk, in either direction, is forwarded no earlier than ``delay_s`` after it arrived.
When the client hangs up (its request timed out), whatever it sent that is still held back is
dropped, as a server that never got to it: a slow OpenSearch, seen from its clients.
"""

from __future__ import annotations

import asyncio
import contextlib


class DelayingProxy:
    def __init__(self, upstream_host: str, upstream_port: int, host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.host = host
        self.port = 0  # chosen by the system at start: never collides with another stack
        self._delay_s = 0.0
        self._delay_changed = asyncio.Event()
        self.held_back = 0  # chunks that waited because of the delay
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    @property
    def delay_s(self) -> float:
        return self._delay_s

    @delay_s.setter
    def delay_s(self, value: float) -> None:
        # Chunks waiting under the old delay re-read it (a test that ends the slowness frees them).
        self._delay_s = value
        self._delay_changed.set()
        self._delay_changed = asyncio.Event()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> DelayingProxy:
        self._server = await asyncio.start_server(self._accept, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        for task in list(self._connections):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            up_r, up_w = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_w.close()
            self._connections.discard(task)
            return
        try:
            to_server = asyncio.create_task(self._pipe(client_r, up_w, flush_at_eof=False))
            to_client = asyncio.create_task(self._pipe(up_r, client_w, flush_at_eof=True))
            await asyncio.wait({to_server, to_client}, return_when=asyncio.FIRST_COMPLETED)
            for pipe in (to_server, to_client):
                pipe.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await pipe
        finally:
            for writer in (client_w, up_w):
                writer.close()
            self._connections.discard(task)

    async def _pipe(
        self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, *, flush_at_eof: bool
    ) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[bytes, float]] = asyncio.Queue()

        async def forward() -> None:
            while True:
                data, arrived = await queue.get()
                if not data:
                    return
                if arrived + self.delay_s > loop.time():
                    self.held_back += 1
                while (wait := arrived + self.delay_s - loop.time()) > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._delay_changed.wait(), timeout=wait)
                dst.write(data)
                await dst.drain()

        forwarder = asyncio.create_task(forward())
        try:
            while data := await src.read(65536):
                queue.put_nowait((data, loop.time()))
            if flush_at_eof:
                queue.put_nowait((b"", loop.time()))
                await forwarder
        finally:
            forwarder.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await forwarder
