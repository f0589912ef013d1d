"""Cancel a request's work when its client goes away (and so its generation upstream)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from starlette.types import Receive

# How long a request runs before its connection is watched for a disconnect.
WATCH_AFTER_S = 0.02


async def cancel_on_disconnect(
    receive: Receive, work: Awaitable[None], watch_after_s: float = WATCH_AFTER_S
) -> bool:
    """Run `work` in this task; if the client disconnects first, cancel it (and so its
    generation) and return True. The watch on the connection starts only once the request
    has run for `watch_after_s`: a quick answer never pays for a second task, and a long
    generation is still stopped within that much of its client leaving."""
    handler = asyncio.current_task()
    assert handler is not None
    loop = asyncio.get_running_loop()
    watcher: asyncio.Task[None] | None = None
    client_gone = False

    async def watch() -> None:
        nonlocal client_gone
        while (await receive())["type"] != "http.disconnect":
            pass
        client_gone = True
        handler.cancel()

    def start_watching() -> None:
        nonlocal watcher
        watcher = loop.create_task(watch())

    timer = loop.call_later(watch_after_s, start_watching)
    try:
        await work
    except asyncio.CancelledError:
        # Our own cancellation (the client left) ends here; anyone else's goes on.
        if client_gone and handler.uncancel() == 0:
            return True
        raise
    finally:
        timer.cancel()
        if watcher is not None:
            watcher.cancel()
    return False
