"""The HTTP server's edge: uvicorn's protocol with limits on heads, bodies, time and
connections (see protocol.py)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable

from modelyard.config import Settings
from modelyard.server.limits import EdgeLimits
from modelyard.server.protocol import EdgeProtocol

__all__ = ["EdgeLimits", "EdgeProtocol", "http_protocol"]


def http_protocol(settings: Settings) -> Callable[..., asyncio.Protocol]:
    """What to pass as uvicorn's `http=`: it builds the protocol for each connection.
    A partial of a module-level class, so it pickles to `--workers` processes."""
    return functools.partial(EdgeProtocol, limits=EdgeLimits.from_settings(settings))
