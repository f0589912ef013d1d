"""X-Title and HTTP-Referer of any size reach the ledger and the public model page cut short."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from modelyard.ledger.attribution import MAX_REFERER_CHARS, MAX_TITLE_CHARS
from tests.e2e.conftest import MODEL
from tests.e2e.server import RunningGateway, start_gateway

MB = 1024 * 1024


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    # Headers this large are refused at the edge by default (431); let them through here to
    # show what the ledger keeps of them.
    running = start_gateway(
        tmp_path_factory.mktemp("attribution"), env={"MODELYARD_MAX_HEADER_BYTES": str(4 * MB)}
    )
    yield running
    running.stop()


def test_a_megabyte_title_is_stored_and_shown_at_most_at_its_cap(gateway: RunningGateway) -> None:
    # Tab and C1 controls (0x85 NEL, 0x9b CSI) are what an HTTP/1.1 header may carry.
    title = b"Shop\tbot\x85\x9b[31m " + b"T" * MB
    referer = "https://shop.example/" + "r" * MB
    response = httpx.post(
        gateway.api_url + "/chat/completions",
        json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1},
        headers={
            "Authorization": f"Bearer {gateway.app_key}",
            "X-Title": title,
            "HTTP-Referer": referer,
        },
        timeout=60,
    )
    assert response.status_code == 200, response.text
    row = httpx.get(
        gateway.api_url + "/generation",
        params={"id": response.headers["x-generation-id"]},
        headers={"Authorization": f"Bearer {gateway.app_key}"},
    ).json()["data"]
    assert row["x_title"] == ("Shop bot [31m " + "T" * MB)[:MAX_TITLE_CHARS]
    assert row["http_referer"] == referer[:MAX_REFERER_CHARS]

    deadline = time.monotonic() + 30
    while True:  # the page reads the database: wait for the ledger writer's batch
        page = httpx.get(f"{gateway.base_url}/models/{MODEL}", timeout=30)
        assert page.status_code == 200
        if "Shop bot" in page.text or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert "Shop bot [31m " + "T" * (MAX_TITLE_CHARS - 14) in page.text
    assert "T" * (MAX_TITLE_CHARS + 1) not in page.text
    assert len(page.content) < 200_000
