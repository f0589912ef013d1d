"""Load patterns on top of `httpclient`: closed loop (N connections, back to back) and open
loop (a fixed request rate; a request never waits for an earlier answer, it takes an idle
connection or opens one, so a slow server cannot hide its queueing: no coordinated
omission)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.httpclient import Connection, Reply, Target


@dataclass
class Sample:
    latencies_s: list[float] = field(default_factory=list)
    first_content_s: list[float] = field(default_factory=list)  # streaming: time to 1st chunk
    content_chunks: int = 0
    errors: int = 0
    elapsed_s: float = 0.0

    @property
    def requests(self) -> int:
        return len(self.latencies_s)

    @property
    def rate(self) -> float:
        return self.requests / self.elapsed_s if self.elapsed_s else 0.0

    @property
    def chunk_rate(self) -> float:
        return self.content_chunks / self.elapsed_s if self.elapsed_s else 0.0

    def add(self, started: float, reply: Reply) -> None:
        if reply.status != 200:
            self.errors += 1
            return
        self.latencies_s.append(reply.done_at - started)
        self.content_chunks += reply.content_chunks
        if reply.first_content_at is not None:
            self.first_content_s.append(reply.first_content_at - started)


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (pct in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


async def closed_loop(
    target: Target,
    connections: int,
    *,
    duration_s: float | None = None,
    total: int | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> Sample:
    """`connections` clients sending back to back until `duration_s` or `total` requests."""
    assert duration_s is not None or total is not None
    sample = Sample()
    remaining = [total if total is not None else -1]
    conns = [await Connection.open(target.host, target.port) for _ in range(connections)]
    started = time.perf_counter()
    deadline = started + duration_s if duration_s is not None else float("inf")

    async def client(conn: Connection) -> None:
        while time.perf_counter() < deadline and remaining[0] != 0:
            remaining[0] -= 1
            sent = time.perf_counter()
            try:
                reply = await conn.request(target.payload, target.marker)
            except (ConnectionError, OSError):
                sample.errors += 1
                conn = await Connection.open(target.host, target.port)
                continue
            sample.add(sent, reply)
            if on_progress is not None:
                on_progress(sample.requests)
            if conn.closed:
                conn = await Connection.open(target.host, target.port)
        conn.close()

    await asyncio.gather(*(client(c) for c in conns))
    sample.elapsed_s = time.perf_counter() - started
    return sample


async def fixed_rate(
    target: Target, rate: float, duration_s: float, max_connections: int = 512
) -> Sample:
    """`rate` requests/s for `duration_s`, each on an idle connection (opened when none is)."""
    sample = Sample()
    idle: list[Connection] = [await Connection.open(target.host, target.port) for _ in range(16)]
    slots = asyncio.Semaphore(max_connections)
    pending: set[asyncio.Task[None]] = set()

    async def one() -> None:
        # From the task's start (not its scheduled time: the loop's timers have 1 ms
        # granularity), so waiting for a connection slot or connecting still counts.
        started = time.perf_counter()
        async with slots:
            while idle and idle[-1].closed:  # the server closed it while idle (keep-alive)
                idle.pop()
            conn = idle.pop() if idle else await Connection.open(target.host, target.port)
            try:
                reply = await conn.request(target.payload, target.marker)
            except (ConnectionError, OSError):
                sample.errors += 1
                return
            sample.add(started, reply)
            if not conn.closed:
                idle.append(conn)

    count = int(rate * duration_s)
    begin = time.perf_counter() + 0.01
    for index in range(count):
        due = begin + index / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one())
        pending.add(task)
        task.add_done_callback(pending.discard)
    await asyncio.gather(*pending)
    sample.elapsed_s = time.perf_counter() - begin
    for conn in idle:
        conn.close()
    return sample
