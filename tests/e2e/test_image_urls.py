"""Image URLs that would make an upstream fetch from inside the network are refused (400
naming the URL's parameter), unless the operator allows the host or network.

The embedded model reads no images, so a URL the policy lets through is then refused by
routing for a different reason, with `param` naming the part and not its URL: that is how
these tests tell the two apart without an upstream that fetches.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.conftest import MODEL
from tests.e2e.server import RunningGateway, start_gateway

URL_PARAM = "messages[0].content[1].image_url.url"
PART_PARAM = "messages[0].content[1]"  # the text-only model's refusal


def ask_about(gw: RunningGateway, url: str, *, stream: bool = False) -> dict[str, object]:
    response = httpx.post(
        gw.api_url + "/chat/completions",
        json={
            "model": MODEL,
            "stream": stream,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "what is it?"},
                        {"type": "image_url", "image_url": {"url": url}},
                    ],
                }
            ],
        },
        headers={"Authorization": f"Bearer {gw.app_key}"},
        timeout=30,
    )
    assert response.status_code == 400, response.text
    error: dict[str, object] = response.json()["error"]
    return error


REFUSED = [
    "http://93.184.215.14/cat.png",
    "https://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "https://metadata.google.internal/computeMetadata/v1/",
    "https://[fd00:ec2::254]/latest/meta-data/",
    "https://127.0.0.1:8080/admin",
    "https://2130706433/",
    "https://0x7f.1/",
    "https://[::ffff:127.0.0.1]/",
    "https://10.0.0.1/cat.png",
    "https://localhost/cat.png",
    # A name resolved by the gateway: this machine's own (loopback or private, or unresolved).
    f"https://{socket.gethostname()}/cat.png",
]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("url", REFUSED)
def test_internal_image_urls_are_refused_by_default(
    gateway: RunningGateway, url: str, stream: bool
) -> None:
    error = ask_about(gateway, url, stream=stream)
    assert error["param"] == URL_PARAM
    assert error["type"] == "invalid_request_error"


def test_a_public_https_url_passes_the_policy(gateway: RunningGateway) -> None:
    assert ask_about(gateway, "https://93.184.215.14/cat.png")["param"] == PART_PARAM


@pytest.fixture(scope="module")
def allowing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    running = start_gateway(
        tmp_path_factory.mktemp("image-allow"),
        env={
            "MODELYARD_IMAGE_URL_ALLOW": "127.0.0.0/8,metadata.google.internal",
            "MODELYARD_IMAGE_URL_ALLOW_HTTP": "1",
        },
    )
    yield running
    running.stop()


def test_the_operator_can_allow_networks_hosts_and_http(allowing: RunningGateway) -> None:
    for url in (
        "http://127.0.0.1:8080/cat.png",
        "https://2130706433/cat.png",
        "http://metadata.google.internal/cat.png",
        "http://93.184.215.14/cat.png",
    ):
        assert ask_about(allowing, url)["param"] == PART_PARAM, url
    for url in ("https://10.0.0.1/cat.png", "https://169.254.169.254/"):
        assert ask_about(allowing, url)["param"] == URL_PARAM, url
