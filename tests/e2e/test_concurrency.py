"""The event loop never waits on inference; disconnects stop generation; requests queue."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time

import httpx
import openai

from tests.e2e.conftest import MODEL
from tests.e2e.server import RunningGateway

LONG = [{"role": "user", "content": "Write a very long story about a lighthouse keeper."}]


def _long_generation(client: openai.OpenAI, done: threading.Event) -> None:
    try:
        client.chat.completions.create(model=MODEL, messages=LONG, max_tokens=600, seed=1)  # type: ignore[arg-type]
    finally:
        done.set()


def test_health_and_models_answer_while_a_generation_runs(
    client: openai.OpenAI, gateway: RunningGateway
) -> None:
    done = threading.Event()
    thread = threading.Thread(target=_long_generation, args=(client, done))
    thread.start()
    time.sleep(0.5)
    try:
        assert not done.is_set(), "the generation should still be running"
        for path in ("/health", "/v1/models"):
            assert httpx.get(gateway.base_url + path, timeout=5).status_code == 200
            # Answered while the generation still runs: the event loop did not wait for it
            # (an order, not a duration: a loaded machine cannot fail it).
            assert not done.is_set(), f"{path} was answered only after the generation"
    finally:
        thread.join()


def test_client_disconnect_stops_the_generation(gateway: RunningGateway) -> None:
    headers = {"Authorization": f"Bearer {gateway.app_key}"}
    body = {
        "model": MODEL,
        "messages": LONG,
        "max_tokens": 3000,
        "stream": True,
        "temperature": 1.0,
        "seed": 1,
        "min_p": 0.0,
    }
    before = _cancelled(gateway)
    with httpx.stream(
        "POST", gateway.api_url + "/chat/completions", json=body, headers=headers, timeout=30
    ) as response:
        lines = response.iter_lines()
        data = [line for _, line in zip(range(6), lines, strict=False)]
        assert any(line.startswith("data: ") for line in data)
    _assert_stopped_early(gateway, headers, before, max_tokens=3000)


def test_non_streaming_disconnect_stops_the_generation(gateway: RunningGateway) -> None:
    headers = {"Authorization": f"Bearer {gateway.app_key}"}
    body = {"model": MODEL, "messages": LONG, "max_tokens": 3000, "seed": 2}
    before = _cancelled(gateway)
    with contextlib.suppress(httpx.ReadTimeout):
        httpx.post(gateway.api_url + "/chat/completions", json=body, headers=headers, timeout=1)
    _assert_stopped_early(gateway, headers, before, max_tokens=3000)


def _cancelled(gateway: RunningGateway) -> dict[str, int]:
    """The ledger's cancelled generations: id -> completion tokens."""
    with contextlib.closing(sqlite3.connect(gateway.data_dir / "modelyard.db")) as db:
        query = "SELECT id, tokens_completion FROM generations WHERE cancelled"
        return dict(db.execute(query).fetchall())


def _assert_stopped_early(
    gateway: RunningGateway, headers: dict[str, str], before: dict[str, int], *, max_tokens: int
) -> None:
    """A new request is served, and the ledger shows the abandoned generation cancelled
    far short of its limit: it stopped rather than ran on (a fact, not a duration)."""
    quick = httpx.post(
        gateway.api_url + "/chat/completions",
        headers=headers,
        timeout=60,
        json={"model": MODEL, "messages": LONG, "max_tokens": 1},
    )
    assert quick.status_code == 200
    deadline = time.monotonic() + 10  # the ledger writes within 50 ms; this is slack
    while not (new := _cancelled(gateway).keys() - before.keys()):
        assert time.monotonic() < deadline, "the abandoned generation is not in the ledger"
        time.sleep(0.05)
    [abandoned] = new
    assert _cancelled(gateway)[abandoned] < max_tokens // 2


async def test_concurrent_requests_all_complete_in_arrival_order(
    async_client: openai.AsyncOpenAI,
) -> None:
    finished: list[int] = []

    async def one(index: int) -> None:
        await async_client.chat.completions.create(
            model=MODEL,
            messages=LONG,
            max_tokens=12,
            seed=index,  # type: ignore[arg-type]
        )
        finished.append(index)

    tasks = []
    for index in range(4):
        tasks.append(asyncio.create_task(one(index)))
        await asyncio.sleep(0.05)
    await asyncio.gather(*tasks)
    assert finished == [0, 1, 2, 3]
