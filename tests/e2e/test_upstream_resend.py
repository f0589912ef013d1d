"""A generation is sent upstream once, through a real `modelyard serve` process.

The upstreams are `DroppingUpstream`s: real HTTP servers on 127.0.0.1 that answer the
first request on a connection, keep it alive, and on the next request read it whole and
close the connection unanswered (at once, or after a second of "generation"). The
gateway's pool then holds a connection that will take a request and drop it: the
upstream must see that request once, and the gateway must fall back or fail, never send
it again.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.server import RunningGateway, start_gateway
from tests.fakes.dropping_upstream import DroppingUpstream

ADMIN = "resend-admin-key"
UPSTREAMS = {"drops": 0.0, "drops-late": 1.0, "drops-first": 0.0, "backup": 0.0}


@pytest.fixture(scope="module")
def upstreams() -> Iterator[dict[str, DroppingUpstream]]:
    started = {
        name: DroppingUpstream(delay_s=delay).__enter__() for name, delay in UPSTREAMS.items()
    }
    yield started
    for upstream in started.values():
        upstream.__exit__(None, None, None)


@pytest.fixture(scope="module")
def gateway(
    upstreams: dict[str, DroppingUpstream], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningGateway]:
    home = tmp_path_factory.mktemp("resend")
    text = ""
    for name, upstream in upstreams.items():
        text += f'[[providers]]\nid = "{name}"\nkind = "openai"\nbase_url = "{upstream.url}"\n'

    def model(name: str, *providers: str) -> str:
        out = f'[[models]]\nid = "test/{name}"\nname = "{name}"\n'
        for provider in providers:
            out += f'[[models.endpoints]]\nprovider = "{provider}"\nupstream_model = "m"\n'
        return out

    text += model("drops", "drops") + model("drops-late", "drops-late")
    text += model("with-backup", "drops-first", "backup")
    (home / "catalog.toml").write_text(text)
    env = {"MODELYARD_LOAD_LOCAL": "false", "MODELYARD_ADMIN_CAN_INFER": "true"}
    running = start_gateway(
        home / "data",
        admin_key=ADMIN,
        extra_args=["--catalog", str(home / "catalog.toml")],
        env=env,
    )
    yield running
    running.stop()


def chat(
    gateway: RunningGateway, model: str, marker: str, stream: bool, **extra: Any
) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": marker}], "stream": stream}
    return httpx.post(
        f"{gateway.api_url}/chat/completions",
        json={**body, **extra},
        headers={"Authorization": f"Bearer {ADMIN}"},
        timeout=30,
    )


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize("model", ["drops", "drops-late"])
def test_a_request_the_upstream_read_and_dropped_is_not_sent_again(
    gateway: RunningGateway, upstreams: dict[str, DroppingUpstream], model: str, stream: bool
) -> None:
    upstream = upstreams[model]
    warm = f"warm-{secrets.token_hex(4)}"
    assert chat(gateway, f"test/{model}", warm, stream).status_code == 200  # a new connection
    assert upstream.times_received(warm.encode()) == 1
    marker = f"once-{secrets.token_hex(4)}"
    response = chat(gateway, f"test/{model}", marker, stream)
    # The only endpoint failed: an error in the OpenAI shape, and one POST upstream.
    assert response.status_code == 502, response.text
    assert "closed before an answer" in response.json()["error"]["message"]
    assert upstream.times_received(marker.encode()) == 1


def test_the_dropped_request_falls_back_to_the_next_endpoint_once(
    gateway: RunningGateway, upstreams: dict[str, DroppingUpstream]
) -> None:
    order = {"provider": {"order": ["drops-first", "backup"], "allow_fallbacks": True}}
    first = f"warm-{secrets.token_hex(4)}"
    warm = chat(gateway, "test/with-backup", first, False, **order)
    assert warm.status_code == 200 and warm.json()["provider"] == "drops-first"
    marker = f"once-{secrets.token_hex(4)}"
    response = chat(gateway, "test/with-backup", marker, True, **order)
    assert response.status_code == 200, response.text
    assert '"provider":"backup"' in response.text.replace(" ", "")
    assert upstreams["drops-first"].times_received(marker.encode()) == 1
    assert upstreams["backup"].times_received(marker.encode()) == 1


def test_the_fake_drops_what_it_reads_on_a_reused_connection() -> None:
    """The fake itself, seen by a client that does not pool: every request on a new
    connection is answered; a second request on one connection is read, then dropped."""
    with DroppingUpstream() as upstream, httpx.Client() as client:
        url = upstream.url + "/chat/completions"
        assert client.post(url, json={"n": 1}).status_code == 200
        with pytest.raises(httpx.RemoteProtocolError):
            client.post(url, json={"n": 2})
    assert [seen.answered for seen in upstream.received] == [True, False]
