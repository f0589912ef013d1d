"""The front doors side by side: /v1/chat/completions, /v1/messages and /v1/responses.

    .venv/bin/python -m bench.front_doors [--rounds 4] [--seconds 4]

One fake OpenAI upstream (bench/upstream.py, 200 content chunks a stream) and one gateway;
the same question goes in through each door, so the difference is each API's own work:
parsing its body, rendering its answer and its SSE events (and, for Responses, queueing the
response for the archive). In alternating rounds
(which door goes first flips each round), each door gets 64 connections non-streaming
(wrk) and 64 streaming (bench/loadgen.py); each figure is the median over the rounds. The
gateway's CPU time per request (all its processes and threads, as bench/ab.py measures it)
is the figure to compare: it moves least with the load of a shared machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import uvloop

from bench import wrk
from bench.httpclient import CONTENT_MARKER, TEXT_DELTA_MARKER, Target, post_request
from bench.loadgen import closed_loop
from bench.procs import MODEL, MachineCpu, fake_upstream, gateway, tree_cpu_s
from bench.upstream import CONTENT

CHUNKS = 200  # content chunks per stream from the fake upstream
CONNECTIONS = 64
CPU_RATIO_TARGET = 1.2  # messages / chat, CPU per request
ANTHROPIC_VERSION = "2023-06-01"


@dataclass(frozen=True)
class Door:
    name: str
    path: str
    headers: Callable[[str], dict[str, str]]  # the app key → auth (and version) headers
    marker: bytes  # how one content chunk shows in this door's stream
    answer: bytes  # what this door's non-streamed answer contains
    end: bytes  # how this door's stream ends
    question: Callable[[], dict[str, object]] = lambda: {
        "max_tokens": 16,
        "messages": [{"role": "user", "content": "Say hello"}],
    }

    def body(self, stream: bool) -> bytes:
        # The same question through every door, in each one's words.
        return orjson.dumps({"model": MODEL, **self.question(), "stream": stream})

    def target(self, port: int, key: str, stream: bool) -> Target:
        body = self.body(stream)
        return post_request("127.0.0.1", port, self.path, body, self.headers(key), self.marker)


DOORS = (
    Door(
        "chat completions",
        "/v1/chat/completions",
        lambda key: {"Authorization": f"Bearer {key}"},
        CONTENT_MARKER,
        b'"object":"chat.completion"',
        b"data: [DONE]",
    ),
    Door(
        "messages",
        "/v1/messages",
        lambda key: {"x-api-key": key, "anthropic-version": ANTHROPIC_VERSION},
        TEXT_DELTA_MARKER,
        b'"type":"message"',
        b"event: message_stop",
    ),
    Door(
        "responses",
        "/v1/responses",
        lambda key: {"Authorization": f"Bearer {key}"},
        b'"delta":"' + CONTENT.encode() + b'"',
        b'"object":"response"',
        b"event: response.completed",
        lambda: {"max_output_tokens": 16, "input": "Say hello"},
    ),
)


def check(door: Door, port: int, key: str, log: Callable[[], str]) -> None:
    """One request of each kind, so a door that does not answer well stops the run with what
    it answered (and the end of the gateway's log), before any figure is taken."""
    url = f"http://127.0.0.1:{port}{door.path}"
    for stream in (False, True):
        try:
            reply = httpx.post(
                url, content=door.body(stream), headers=door.headers(key), timeout=30
            )
        except httpx.HTTPError as error:
            problem = f"failed: {error!r}"
        else:
            chunks = reply.content.count(door.marker)
            if stream:
                whole = chunks == CHUNKS and door.end in reply.content
            else:
                whole = door.answer in reply.content
            if reply.status_code == 200 and whole:
                continue
            problem = f"answered {reply.status_code}, {chunks} content chunks:\n{reply.text[:2000]}"
        raise SystemExit(
            f"POST {door.path} (stream={stream}) {problem}\n"
            f"-- the gateway's log, its end --\n{log()[-4000:]}"
        )


def plain(door: Door, port: int, key: str, pid: int, seconds: float) -> dict[str, float]:
    url = f"http://127.0.0.1:{port}{door.path}"
    before = tree_cpu_s(pid)
    found = wrk.run_wrk(
        url,
        door.body(stream=False),
        connections=CONNECTIONS,
        duration_s=seconds,
        headers=door.headers(key),
    )
    cpu = (tree_cpu_s(pid) - before) / found.requests * 1e6 if found.requests else 0.0
    return {
        "non-streaming: requests/s": found.rate,
        "non-streaming: CPU per request, µs": cpu,
        "non-streaming: latency p50, ms": found.p50_ms,
        "non-streaming: errors": found.errors,
    }


def streaming(door: Door, port: int, key: str, pid: int, seconds: float) -> dict[str, float]:
    target = door.target(port, key, stream=True)
    before = tree_cpu_s(pid)
    flow = uvloop.run(closed_loop(target, CONNECTIONS, duration_s=seconds))
    streams = flow.requests
    return {
        "streaming: streams/s": flow.rate,
        "streaming: content chunks/s": flow.chunk_rate,
        "streaming: CPU per stream, µs": (tree_cpu_s(pid) - before) / streams * 1e6
        if streams
        else 0.0,
        "streaming: chunks per stream": flow.content_chunks / streams if streams else 0.0,
        "streaming: errors": flow.errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=4, help="per door, kind and round")
    args = parser.parse_args()
    figures: dict[str, dict[str, list[float]]] = {door.name: {} for door in DOORS}
    load, machine = os.getloadavg(), MachineCpu.now()
    with (
        tempfile.TemporaryDirectory(prefix="modelyard-doors-") as work,
        fake_upstream(CHUNKS) as upstream,
        gateway(Path(work), upstream.port) as gw,
    ):
        for door in DOORS:
            check(door, gw.port, gw.app_key, gw.running.log)
        for door in DOORS:  # warm-up, not counted
            plain(door, gw.port, gw.app_key, gw.pid, 2)
            streaming(door, gw.port, gw.app_key, gw.pid, 2)
        for round_ in range(args.rounds):
            for door in DOORS if round_ % 2 == 0 else DOORS[::-1]:
                for measure in (plain, streaming):
                    found = measure(door, gw.port, gw.app_key, gw.pid, args.seconds)
                    for name, value in found.items():
                        figures[door.name].setdefault(name, []).append(value)
    print(table(figures, args.rounds))
    print(
        f"\nLoad average (1, 5, 15 min) at the start: {_loads(load)}; at the end: "
        f"{_loads(os.getloadavg())}. CPU time the hypervisor gave to other guests (steal): "
        f"{MachineCpu.now().steal_share(machine):.0%}."
    )


def table(figures: dict[str, dict[str, list[float]]], rounds: int) -> str:
    """Medians, each door's ratio to chat completions, and the range of that ratio within a
    round (the doors measured a few seconds apart): how far the machine's noise moves it."""
    chat = figures[DOORS[0].name]
    others = DOORS[1:]
    head = f"| measure (median of {rounds} rounds, {CONNECTIONS} connections) | {DOORS[0].path} "
    for door in others:
        head += f"| {door.path} | {door.name} / chat | same round, min–max "
    lines = [head + "| target | met |", "|---" * (3 + 3 * len(others)) + "|"]
    for name, values in chat.items():
        a = sum(values) if name.endswith("errors") else statistics.median(values)
        cells, met = [_number(a)], []
        for door in others:
            mine = figures[door.name][name]
            b = sum(mine) if name.endswith("errors") else statistics.median(mine)
            ratio = spread = ""
            if not name.endswith("errors") and a:
                ratio = f"{b / a:.2f}"
                paired = [m / c for c, m in zip(values, mine, strict=True) if c]
                spread = f"{min(paired):.2f}–{max(paired):.2f}"
                if "CPU per" in name:
                    met.append(b / a <= CPU_RATIO_TARGET)
            cells += [_number(b), ratio, spread]
        target = f"≤ {CPU_RATIO_TARGET:g}×" if met else ""
        verdict = ("yes" if all(met) else "**no**") if met else ""
        lines.append(f"| {name} | {' | '.join(cells)} | {target} | {verdict} |")
    return "\n".join(lines)


def _loads(load: tuple[float, float, float]) -> str:
    return ", ".join(f"{value:.2f}" for value in load)


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 or value == int(value) else f"{value:.2f}"


if __name__ == "__main__":
    main()
