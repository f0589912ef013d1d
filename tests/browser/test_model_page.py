"""The model page shows the numbers that this test's own requests produced."""

from __future__ import annotations

import time

import httpx
import openai
from playwright.sync_api import Page, expect

from modelyard.gateway import BOOTSTRAP_MODEL
from modelyard.web.format import compact, millis, rate
from tests.browser.conftest import screenshot
from tests.e2e.server import RunningGateway

MODEL = BOOTSTRAP_MODEL  # the one the app "default" has attached
ENDPOINT = f"local/{MODEL}"
TEMPERATURES = (0.2, 0.6, 1.0)


def _requests_recorded(gateway: RunningGateway, expected: int) -> None:
    """Wait until the ledger writer has stored `expected` requests of the app."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        usage = httpx.get(
            f"{gateway.base_url}/admin/apps/default/usage",
            headers={"Authorization": f"Bearer {gateway.admin_key}"},
        ).json()["data"]
        if sum(row["requests"] for row in usage) >= expected:
            return
        time.sleep(0.05)
    raise AssertionError("the ledger did not record the requests")


def _stream(client: openai.OpenAI, temperature: float) -> int:
    """One streamed request; returns its prompt + completion tokens."""
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Name three colours."}],
        max_tokens=24,
        temperature=temperature,
        stream=True,
        stream_options={"include_usage": True},
        extra_headers={"X-Title": "Browser Test Suite"},
    )
    tokens = 0
    for chunk in stream:
        if chunk.usage is not None:
            tokens = chunk.usage.prompt_tokens + chunk.usage.completion_tokens
    assert tokens > 0
    return tokens


def test_model_page_shows_the_numbers_of_our_requests(page: Page, gateway: RunningGateway) -> None:
    client = openai.OpenAI(base_url=gateway.api_url, api_key=gateway.app_key, max_retries=0)
    total = sum(_stream(client, t) for t in TEMPERATURES)
    _requests_recorded(gateway, len(TEMPERATURES))
    api = httpx.get(f"{gateway.api_url}/models/{MODEL}/endpoints").json()["data"]
    (endpoint,) = api["endpoints"]
    assert endpoint["uptime_last_5m"] == 100.0 and endpoint["uptime_last_1d"] == 100.0  # percent
    assert endpoint["latency_last_30m"]["p50"] > 0
    assert endpoint["throughput_last_30m"]["p50"] > 0

    page.goto(f"/models/{MODEL}")
    row = page.locator(f'tr[data-endpoint="{ENDPOINT}"]')
    expect(row.locator('[data-stat="uptime"]')).to_have_text("100%")
    expect(row.locator('[data-stat="latency"]')).to_have_text(
        millis(endpoint["latency_last_30m"]["p50"])
    )
    expect(row.locator('[data-stat="throughput"]')).to_have_text(
        rate(endpoint["throughput_last_30m"]["p50"])
    )
    expect(page.locator("#tokens-total")).to_have_text(compact(total))
    expect(page.locator("#apps .ranked").first).to_contain_text("default")
    expect(page.locator("#apps")).to_contain_text("Browser Test Suite")
    temperature = page.locator('tr[data-param="temperature"] td')
    expect(temperature).to_have_text(["temperature", "0.2", "0.6", "1", "3"])
    expect(page.locator(".chart .bar")).to_have_count(30)
    screenshot(page, "model-with-usage")

    # The app page counts the same requests.
    page.goto("/login?next=/apps/default")
    page.fill("#admin_key", gateway.admin_key)
    page.click("button[type=submit]")
    expect(page.locator("#app-requests")).to_have_text(str(len(TEMPERATURES)))
    expect(page.locator("#app-tokens")).to_have_text(f"{total:,}")
    expect(page.locator("#by-api tbody tr")).to_have_count(1)
    expect(page.locator("#by-api tbody td")).to_have_text(
        ["Chat Completions", str(len(TEMPERATURES)), f"{total:,}", "$0"]
    )
    screenshot(page, "app-with-usage")
