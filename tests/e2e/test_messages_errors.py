"""/v1/messages errors, as the anthropic SDK sees them: its exception class, the HTTP status
and Anthropic's error body `{"type": "error", "error": {"type", "message"}}`.

A real `modelyard serve` process in front of `FakeAnthropic` (tests/fakes), with a small
body limit and a model allowed one request a minute.
"""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import httpx
import pytest
from anthropic.types import Message, MessageParam

from tests.e2e.server import RunningGateway, start_gateway
from tests.fakes.anthropic_server import API_KEY, FakeAnthropic

KEY_ENV = "MODELYARD_TEST_FAKE_ANTHROPIC_KEY"
MAX_BODY = 64 * 1024
MAX_OUTPUT = 32000
HI: list[MessageParam] = [{"role": "user", "content": "hi"}]


def _model(model_id: str, upstream: str, extra: str = "") -> str:
    return f"""
[[models]]
id = "{model_id}"
name = "{model_id}"
context_length = 200000
max_output = {MAX_OUTPUT}
{extra}
[[models.endpoints]]
provider = "fake-anthropic"
upstream_model = "{upstream}"
price = {{ prompt = 1.0, completion = 5.0 }}
"""


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server


@pytest.fixture(scope="module")
def gateway(
    fake: FakeAnthropic, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningGateway]:
    home = tmp_path_factory.mktemp("messages-errors")
    catalog = home / "catalog.toml"
    providers = (
        f'[[providers]]\nid = "fake-anthropic"\nkind = "anthropic"\n'
        f'base_url = "{fake.base_url}"\napi_key_env = "{KEY_ENV}"\n'
    )
    catalog.write_text(
        providers
        + _model("test/claude", "claude-test")
        + _model("test/overloaded", "overloaded-claude")
        + _model("test/one-a-minute", "claude-test", "rpm = 1\n")
        + _model("test/not-attached", "claude-test")
    )
    env = {
        "MODELYARD_LOAD_LOCAL": "0",
        "MODELYARD_MAX_BODY_BYTES": str(MAX_BODY),
        KEY_ENV: API_KEY,
    }
    running = start_gateway(home / "data", extra_args=["--catalog", str(catalog)], env=env)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def key(gateway: RunningGateway) -> str:
    headers = {"Authorization": f"Bearer {gateway.admin_key}"}
    url = gateway.base_url + "/admin/apps"
    assert httpx.post(url, json={"name": "errors"}, headers=headers).status_code == 201
    for index, model in enumerate(("test/claude", "test/overloaded", "test/one-a-minute")):
        attached = httpx.post(
            f"{url}/errors/models", json={"model": model, "alias": f"M{index}"}, headers=headers
        )
        assert attached.status_code == 201, attached.text
    created = httpx.post(f"{url}/errors/keys", json={}, headers=headers)
    assert created.status_code == 201, created.text
    return str(created.json()["key"])


@pytest.fixture
def client(gateway: RunningGateway, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.base_url, api_key=key, max_retries=0, timeout=30)


def _error(exc: anthropic.APIStatusError | anthropic.APIError, kind: str | None) -> str:
    """Check Anthropic's error body; its message."""
    body = exc.body
    assert isinstance(body, dict), body
    assert body["type"] == "error", body
    error = body["error"]
    if kind is not None:
        assert error["type"] == kind, body
    assert isinstance(error["type"], str)
    assert isinstance(error["message"], str) and error["message"], body
    return str(error["message"])


def test_a_missing_max_tokens_is_a_bad_request_naming_it(
    client: anthropic.Anthropic, fake: FakeAnthropic
) -> None:
    before = len(fake.received)
    with pytest.raises(anthropic.BadRequestError) as caught:
        # The SDK's create() insists on max_tokens; its plain post() sends what it is given.
        client.post("/v1/messages", body={"model": "test/claude", "messages": HI}, cast_to=Message)
    assert caught.value.status_code == 400
    assert "max_tokens" in _error(caught.value, "invalid_request_error")
    assert len(fake.received) == before


@pytest.mark.parametrize("header", ["authorization", "x-api-key"])
def test_a_bad_key_is_an_authentication_error(gateway: RunningGateway, header: str) -> None:
    # The SDK sends api_key as a Bearer token; x-api-key is what curl and older SDKs send.
    client = anthropic.Anthropic(
        base_url=gateway.base_url,
        api_key="sk-not-a-key" if header == "authorization" else None,
        default_headers={"x-api-key": "sk-not-a-key"} if header == "x-api-key" else None,
        max_retries=0,
        timeout=30,
    )
    with pytest.raises(anthropic.AuthenticationError) as caught:
        client.messages.create(model="test/claude", max_tokens=16, messages=HI)
    assert caught.value.status_code == 401
    _error(caught.value, "authentication_error")


def test_a_model_not_attached_is_refused_as_chat_completions_refuses_it(
    gateway: RunningGateway, client: anthropic.Anthropic, key: str
) -> None:
    chat = httpx.post(
        gateway.base_url + "/v1/chat/completions",
        json={"model": "test/not-attached", "messages": HI, "max_tokens": 16},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert chat.status_code in (403, 404), chat.text
    expected = {403: anthropic.PermissionDeniedError, 404: anthropic.NotFoundError}
    kinds = {403: "permission_error", 404: "not_found_error"}
    with pytest.raises(anthropic.APIStatusError) as caught:
        client.messages.create(model="test/not-attached", max_tokens=16, messages=HI)
    assert caught.value.status_code == chat.status_code
    assert type(caught.value) is expected[chat.status_code]
    assert "test/not-attached" in _error(caught.value, kinds[chat.status_code])


def test_an_unknown_model_is_not_found(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        client.messages.create(model="test/no-such-model", max_tokens=16, messages=HI)
    _error(caught.value, "not_found_error")


def test_a_body_over_the_limit_is_413(client: anthropic.Anthropic, fake: FakeAnthropic) -> None:
    before = len(fake.received)
    big: list[MessageParam] = [{"role": "user", "content": "x " * MAX_BODY}]
    with pytest.raises(anthropic.ContentTooLargeError) as caught:
        client.messages.create(model="test/claude", max_tokens=16, messages=big)
    assert caught.value.status_code == 413
    _error(caught.value, "request_too_large")
    assert len(fake.received) == before


def test_the_models_rate_limit_is_a_rate_limit_error(client: anthropic.Anthropic) -> None:
    client.messages.create(model="test/one-a-minute", max_tokens=16, messages=HI)
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(model="test/one-a-minute", max_tokens=16, messages=HI)
    assert caught.value.status_code == 429
    _error(caught.value, "rate_limit_error")
    assert int(caught.value.response.headers["retry-after"]) >= 1


@pytest.mark.parametrize("stream", [False, True])
def test_an_overloaded_upstream_is_529(client: anthropic.Anthropic, stream: bool) -> None:
    with pytest.raises(anthropic.OverloadedError) as caught:
        if stream:
            with client.messages.stream(
                model="test/overloaded", max_tokens=16, messages=HI
            ) as events:
                events.get_final_message()
        else:
            client.messages.create(model="test/overloaded", max_tokens=16, messages=HI)
    assert caught.value.status_code == 529
    assert isinstance(caught.value, anthropic.InternalServerError)
    _error(caught.value, "overloaded_error")


def test_a_failure_mid_stream_is_an_error_event(
    client: anthropic.Anthropic, fake: FakeAnthropic
) -> None:
    pieces: list[str] = []
    with (
        pytest.raises(anthropic.APIStatusError) as caught,
        client.messages.stream(
            model="test/claude",
            max_tokens=64,
            messages=[{"role": "user", "content": "hello [error-midway]"}],
        ) as stream,
    ):
        pieces.extend(stream.text_stream)
    assert "".join(pieces) == "Echo:"  # the text before the failure reached the client
    assert caught.value.response.status_code == 200  # the stream had started
    _error(caught.value, None)
    assert fake.streams[-1][-1]["type"] == "error"


def test_a_failure_mid_stream_is_an_error_event_on_the_wire(
    gateway: RunningGateway, key: str
) -> None:
    body = {
        "model": "test/claude",
        "max_tokens": 64,
        "stream": True,
        "messages": [{"role": "user", "content": "hello [error-midway]"}],
    }
    headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    with httpx.stream(
        "POST", gateway.base_url + "/v1/messages", json=body, headers=headers, timeout=30
    ) as response:
        assert response.status_code == 200
        text = response.read().decode()
    frames = [f for f in text.split("\n\n") if f.strip()]
    assert frames[-1].startswith("event: error\n"), text
    assert "message_stop" not in text


def test_an_upstream_stream_cut_short_ends_with_an_error_event(
    client: anthropic.Anthropic, fake: FakeAnthropic
) -> None:
    """No message_stop from upstream: the client must not take the text for a whole answer."""
    with (
        pytest.raises(anthropic.APIError),
        client.messages.stream(
            model="test/claude",
            max_tokens=64,
            messages=[{"role": "user", "content": "hello [cut-midway]"}],
        ) as stream,
    ):
        stream.get_final_message()
    assert fake.streams[-1][-1]["type"] == "content_block_delta"


def test_max_tokens_above_the_models_output_is_clamped(
    client: anthropic.Anthropic, fake: FakeAnthropic
) -> None:
    message = client.messages.create(model="test/claude", max_tokens=MAX_OUTPUT * 2, messages=HI)
    assert message.content[0].type == "text" and message.content[0].text == "Echo: hi"
    assert fake.requests[-1]["max_tokens"] == MAX_OUTPUT
