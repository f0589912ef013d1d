"""What the server's edge protocol costs per request, with no network and no application:
uvicorn's HttpToolsProtocol and modelyard's EdgeProtocol fed the same keep-alive GETs on a
stand-in transport, in one uvloop loop. CPU time, best of alternating runs.

    .venv/bin/python -m bench.edge_protocol
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from typing import Any

import uvloop
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from modelyard.server import EdgeLimits, EdgeProtocol

REQUEST = b"GET /health HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n"


async def _app(scope: Any, receive: Any, send: Any) -> None:
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"ok"})


class _Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0
        self.closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes += 1

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 1), "peername": ("127.0.0.1", 2)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def _cpu_us_per_request(make: Callable[..., asyncio.Protocol], requests: int) -> float:
    config = Config(app=_app, lifespan="off", log_level="warning")
    config.load()
    protocol: Any = make(config=config, server_state=ServerState(), app_state={})
    transport = _Transport()
    protocol.connection_made(transport)
    started = time.process_time()
    for _ in range(requests):
        protocol.data_received(REQUEST)
        await asyncio.sleep(0)  # the request's task runs and answers
        await asyncio.sleep(0)
    spent = time.process_time() - started
    assert transport.writes >= 2 * requests
    protocol.connection_lost(None)
    return spent / requests * 1e6


async def _main() -> None:
    sides: dict[str, Callable[..., asyncio.Protocol]] = {
        "uvicorn HttpToolsProtocol": HttpToolsProtocol,
        "EdgeProtocol": functools.partial(EdgeProtocol, limits=EdgeLimits()),
    }
    best = dict.fromkeys(sides, float("inf"))
    for _ in range(12):
        for name, make in sides.items():
            best[name] = min(best[name], await _cpu_us_per_request(make, 5000))
    for name, value in best.items():
        print(f"{name}: {value:.2f} µs CPU per request (best of 12 runs of 5,000)")


if __name__ == "__main__":
    uvloop.run(_main())
