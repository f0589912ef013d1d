"""The event loop never waits on inference; disconnects stop generation; requests queue."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time

import httpx
import openai

from tests.e2e.conftest import MODEL
from tests.e2e.server import RunningGateway

LONG = [{"role": "user", "content": "Write a very long story about a lighthouse keeper."}]


def _long_generation(client: openai.OpenAI, done: threading.Event) -> None:
    try:
        client.chat.completions.create(model=MODEL, messages=LONG, max_tokens=300, seed=1)  # type: ignore[arg-type]
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
            started = time.perf_counter()
            assert httpx.get(gateway.base_url + path, timeout=5).status_code == 200
            assert time.perf_counter() - started < 0.25
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
    with httpx.stream(
        "POST", gateway.api_url + "/chat/completions", json=body, headers=headers, timeout=30
    ) as response:
        lines = response.iter_lines()
        data = [line for _, line in zip(range(6), lines, strict=False)]
        assert any(line.startswith("data: ") for line in data)
    # The long generation was abandoned; a new request is served at once, not after it.
    started = time.perf_counter()
    quick = httpx.post(
        gateway.api_url + "/chat/completions",
        headers=headers,
        timeout=60,
        json={"model": MODEL, "messages": LONG, "max_tokens": 1},
    )
    assert quick.status_code == 200
    assert time.perf_counter() - started < 3


def test_non_streaming_disconnect_stops_the_generation(gateway: RunningGateway) -> None:
    headers = {"Authorization": f"Bearer {gateway.app_key}"}
    body = {"model": MODEL, "messages": LONG, "max_tokens": 3000, "seed": 2}
    with contextlib.suppress(httpx.ReadTimeout):
        httpx.post(gateway.api_url + "/chat/completions", json=body, headers=headers, timeout=1)
    started = time.perf_counter()
    quick = httpx.post(
        gateway.api_url + "/chat/completions",
        headers=headers,
        timeout=60,
        json={"model": MODEL, "messages": LONG, "max_tokens": 1},
    )
    assert quick.status_code == 200
    assert time.perf_counter() - started < 3


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
