"""The scenarios. Each one measures the fake upstream called directly and the gateway in
front of it, in the same run and back to back, and returns rows for the results table."""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field

import orjson
import uvloop

from bench import wrk
from bench.httpclient import Target, post_request
from bench.loadgen import Sample, closed_loop, fixed_rate, percentile
from bench.procs import MODEL, tree_cpu_s

PATH = "/v1/chat/completions"
WARMUP_S = 2.0
ROUNDS = 3  # alternating direct / gateway runs per non-streaming scenario


def request_body(stream: bool) -> bytes:
    body: dict[str, object] = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Say hello"}],
        "max_tokens": 16,
    }
    if stream:
        body["stream"] = True
    return orjson.dumps(body)


@dataclass(frozen=True)
class Side:
    """Where requests go: the upstream directly (no key) or the gateway (an app key)."""

    port: int
    key: str | None = None
    pid: int | None = None  # the server's process (its children too), for its CPU time

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{PATH}"

    def target(self, stream: bool) -> Target:
        headers = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        return post_request("127.0.0.1", self.port, PATH, request_body(stream), headers)


@dataclass(frozen=True)
class Row:
    scenario: str
    measure: str
    direct: str
    gateway: str
    compared: str  # gateway − direct, or gateway / direct
    target: str = ""
    met: bool | None = None


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def ms(seconds: float) -> float:
    return seconds * 1000


def _ratio(gateway: float, direct: float) -> str:
    return f"{gateway / direct:.1%}" if direct else "n/a"


def _latency_rows(
    direct: list[float], gateway: list[float], pcts: tuple[float, ...]
) -> list[tuple[str, float, float]]:
    return [
        (f"latency p{pct:g}, ms", ms(percentile(direct, pct)), ms(percentile(gateway, pct)))
        for pct in pcts
    ]


# -- non-streaming, wrk -------------------------------------------------------------------
def throughput(
    side: Side, connections: int, duration_s: float, warm_up: bool = True
) -> wrk.WrkResult:
    """wrk, after a short warm-up of its own unless told otherwise."""
    body = request_body(stream=False)
    if warm_up:
        wrk.run_wrk(side.url, body, connections=connections, duration_s=WARMUP_S, auth=side.key)
    return wrk.run_wrk(
        side.url, body, connections=connections, duration_s=duration_s, auth=side.key
    )


def nonstream(
    scenario: str,
    direct: Side,
    gateway: Side,
    connections: int,
    duration_s: float,
    limits: Mapping[str, float],
) -> tuple[list[Row], wrk.WrkResult, wrk.WrkResult]:
    """req/s and latency p50/p99 with wrk. `limits`: "rate" (min req/s), "p50"/"p99" (max
    added ms). Returns the rows and the direct and gateway results.

    The time is split into ROUNDS that alternate direct and gateway, and each figure is
    the median over the rounds, so a burst of load from other guests on this machine
    falls on one round of one side rather than on a whole side."""
    runs: dict[str, list[tuple[wrk.WrkResult, float | None]]] = {"direct": [], "gateway": []}
    for round_ in range(ROUNDS):
        sides = [("direct", direct), ("gateway", gateway)]
        for name, side in sides if round_ % 2 == 0 else reversed(sides):
            runs[name].append(
                _measured(side, connections, duration_s / ROUNDS, warm_up=round_ == 0)
            )
    d, d_cpu = _median_run(runs["direct"])
    g, g_cpu = _median_run(runs["gateway"])
    rows = [
        Row(
            scenario,
            "requests/s",
            f"{d.rate:,.0f}",
            f"{g.rate:,.0f}",
            _ratio(g.rate, d.rate),
            *min_target(g.rate, limits.get("rate"), "{:,.0f} req/s"),
        )
    ]
    for name, dv, gv in (("p50", d.p50_ms, g.p50_ms), ("p99", d.p99_ms, g.p99_ms)):
        rows.append(
            Row(
                scenario,
                f"latency {name}, ms",
                f"{dv:.2f}",
                f"{gv:.2f}",
                f"+{gv - dv:.2f} ms",
                *max_target(gv - dv, limits.get(name), "added ≤ {:g} ms"),
            )
        )
    rows.append(Row(scenario, "errors", str(d.errors), str(g.errors), ""))
    if d_cpu is not None and g_cpu is not None:
        rows.append(
            Row(
                scenario,
                "server CPU per request, µs (all its threads)",
                f"{d_cpu:.0f}",
                f"{g_cpu:.0f}",
                f"{g_cpu / d_cpu:.0f}×" if d_cpu else "",
            )
        )
    return rows, d, g


def _median_run(
    runs: list[tuple[wrk.WrkResult, float | None]],
) -> tuple[wrk.WrkResult, float | None]:
    results = [result for result, _ in runs]
    cpus = [cpu for _, cpu in runs if cpu is not None]
    return (
        wrk.WrkResult(
            requests=sum(r.requests for r in results),
            rate=statistics.median(r.rate for r in results),
            p50_ms=statistics.median(r.p50_ms for r in results),
            p99_ms=statistics.median(r.p99_ms for r in results),
            p999_ms=statistics.median(r.p999_ms for r in results),
            errors=sum(r.errors for r in results),
        ),
        statistics.median(cpus) if cpus else None,
    )


def _measured(
    side: Side, connections: int, duration_s: float, warm_up: bool
) -> tuple[wrk.WrkResult, float | None]:
    """wrk (after a warm-up if asked), and the CPU time the server spent per request meanwhile (µs):
    it moves less than requests/s when other guests take the machine's cores."""
    if warm_up:
        throughput(side, connections, WARMUP_S, warm_up=False)
    before = tree_cpu_s(side.pid) if side.pid else 0.0
    result = throughput(side, connections, duration_s, warm_up=False)
    if side.pid is None or not result.requests:
        return result, None
    return result, (tree_cpu_s(side.pid) - before) / result.requests * 1e6


def min_target(value: float, limit: float | None, text: str) -> tuple[str, bool | None]:
    return ("", None) if limit is None else ("≥ " + text.format(limit), value >= limit)


def max_target(value: float, limit: float | None, text: str) -> tuple[str, bool | None]:
    return ("", None) if limit is None else (text.format(limit), value <= limit)


# -- streaming, own client ----------------------------------------------------------------
def streaming(direct: Side, gateway: Side, chunks: int) -> list[Row]:
    """Time to first content chunk (one stream at a time) and relayed chunks/s (8 streams
    at once)."""
    scenario = f"streaming, {chunks} chunks"

    async def measure(side: Side) -> tuple[Sample, Sample]:
        target = side.target(stream=True)
        await closed_loop(target, 1, total=50)  # warm-up
        first = await closed_loop(target, 1, total=400)
        await closed_loop(target, 8, duration_s=WARMUP_S)
        flow = await closed_loop(target, 8, duration_s=8)
        return first, flow

    (d_first, d_flow), (g_first, g_flow) = (uvloop.run(measure(s)) for s in (direct, gateway))
    d_ttfc, g_ttfc = (ms(percentile(s.first_content_s, 50)) for s in (d_first, g_first))
    per_stream = [s.content_chunks / s.requests if s.requests else 0 for s in (d_flow, g_flow)]
    errors = [a.errors + b.errors for a, b in ((d_first, d_flow), (g_first, g_flow))]
    return [
        Row(
            scenario,
            "time to first chunk p50, ms (1 stream)",
            f"{d_ttfc:.2f}",
            f"{g_ttfc:.2f}",
            f"+{g_ttfc - d_ttfc:.2f} ms",
            *max_target(g_ttfc - d_ttfc, 1.0, "added ≤ {:g} ms"),
        ),
        Row(
            scenario,
            "content chunks/s (8 streams)",
            f"{d_flow.chunk_rate:,.0f}",
            f"{g_flow.chunk_rate:,.0f}",
            _ratio(g_flow.chunk_rate, d_flow.chunk_rate),
            *min_target(g_flow.chunk_rate, 20_000, "{:,.0f}/s"),
        ),
        Row(
            scenario,
            "streams/s (8 streams)",
            f"{d_flow.rate:,.0f}",
            f"{g_flow.rate:,.0f}",
            _ratio(g_flow.rate, d_flow.rate),
        ),
        Row(
            scenario,
            "chunks per stream; errors",
            f"{per_stream[0]:.0f}; {errors[0]}",
            f"{per_stream[1]:.0f}; {errors[1]}",
            "",
        ),
    ]


# -- fixed rate, own client ---------------------------------------------------------------
def steady_rate(
    direct: Side, gateway: Side, rate: float, duration_s: float, prefix: str = ""
) -> list[Row]:
    scenario = f"{prefix}fixed {rate:,.0f} req/s for {duration_s:g} s"

    async def measure(side: Side) -> Sample:
        target = side.target(stream=False)
        await fixed_rate(target, rate, WARMUP_S)
        return await fixed_rate(target, rate, duration_s)

    d, g = (uvloop.run(measure(s)) for s in (direct, gateway))
    rows = [Row(scenario, "requests/s achieved", f"{d.rate:,.0f}", f"{g.rate:,.0f}", "")]
    for name, dv, gv in _latency_rows(d.latencies_s, g.latencies_s, (50, 99, 99.9)):
        target: tuple[str, bool | None] = ("", None)
        if name.startswith("latency p99,"):
            target = max_target(gv - dv, 5.0, "added ≤ {:g} ms")
        rows.append(Row(scenario, name, f"{dv:.2f}", f"{gv:.2f}", f"+{gv - dv:.2f} ms", *target))
    rows.append(
        Row(
            scenario,
            "errors",
            str(d.errors),
            str(g.errors),
            "",
            "none",
            g.errors == 0,
        )
    )
    return rows


# -- workers --------------------------------------------------------------------------------
@dataclass(frozen=True)
class WorkersRun:
    result: wrk.WrkResult
    rss_mb: float  # all the gateway's processes
    cpu_cores: float  # CPU seconds the gateway's processes used per second of the run
    steal: float  # share of the machine's CPU time the hypervisor gave to other guests

    @property
    def per_core(self) -> float:
        """Requests per CPU-second of the gateway's own processes."""
        return self.result.rate / self.cpu_cores if self.cpu_cores else 0.0


def median_run(runs: list[WorkersRun]) -> WorkersRun:
    """The median of each figure over the rounds (errors: the total)."""
    result, _ = _median_run([(run.result, None) for run in runs])
    return WorkersRun(
        result,
        statistics.median(run.rss_mb for run in runs),
        statistics.median(run.cpu_cores for run in runs),
        statistics.median(run.steal for run in runs),
    )


def workers_rows(direct: wrk.WrkResult, one: WorkersRun, two: WorkersRun) -> list[Row]:
    scenario = "`--workers 2` vs one worker, 64 connections"
    a, b = one.result, two.result
    return [
        Row(
            scenario,
            "requests/s (direct: upstream; gateway: 1 worker → 2 workers)",
            f"{direct.rate:,.0f}",
            f"{a.rate:,.0f} → {b.rate:,.0f}",
            f"{b.rate / a.rate:.2f}×",
            *min_target(b.rate / a.rate, 1.7, "{:g}× one worker"),
        ),
        Row(
            scenario,
            "CPU the gateway's processes used, cores (1 worker → 2 workers)",
            "",
            f"{one.cpu_cores:.2f} → {two.cpu_cores:.2f}",
            f"{two.cpu_cores / one.cpu_cores:.2f}×" if one.cpu_cores else "",
        ),
        Row(
            scenario,
            "requests per gateway CPU-second (1 worker → 2 workers)",
            "",
            f"{one.per_core:,.0f} → {two.per_core:,.0f}",
            f"{two.per_core / one.per_core:.2f}×" if one.per_core else "",
        ),
        Row(
            scenario,
            "machine CPU stolen by the hypervisor (1 worker → 2 workers)",
            "",
            f"{one.steal:.0%} → {two.steal:.0%}",
            "",
        ),
        Row(
            scenario,
            "errors (1 worker → 2 workers)",
            str(direct.errors),
            f"{a.errors} → {b.errors}",
            "",
        ),
        Row(
            scenario,
            "latency p99, ms (1 worker → 2 workers)",
            f"{direct.p99_ms:.2f}",
            f"{a.p99_ms:.2f} → {b.p99_ms:.2f}",
            "",
        ),
        Row(
            scenario,
            "RSS of all gateway processes, MB (1 worker → 2 workers + supervisor)",
            "",
            f"{one.rss_mb:.0f} → {two.rss_mb:.0f}",
            "",
        ),
    ]
