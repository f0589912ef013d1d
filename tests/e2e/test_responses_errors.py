"""/v1/responses errors, as the openai SDK sees them: its exception class, the HTTP status
and OpenAI's error body `{"error": {"message", "type", "param", "code"}}`; and a failure
after the stream started, which must end the stream as failed.

A real `modelyard serve` with a small body limit in front of three upstreams of kind
openai: `FakeOpenAIChat` (one of its models allowed one request a minute), `SlowOpenAI`'s
"dies" scenario (five text chunks, then the connection is cut) and a port nothing listens on.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from openai.types.responses import Response

from tests.e2e.server import RunningGateway, free_port, start_gateway
from tests.fakes.openai_chat import FakeOpenAIChat, catalog_toml
from tests.fakes.openai_stream import DIES_AFTER, SlowOpenAI

MAX_BODY = 64 * 1024
MODEL = "test/chat"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAIChat]:
    with FakeOpenAIChat() as server:
        yield server


@pytest.fixture(scope="module")
def slow() -> Iterator[SlowOpenAI]:
    with SlowOpenAI(free_port()) as server:
        yield server


@pytest.fixture(scope="module")
def gateway(
    fake: FakeOpenAIChat, slow: SlowOpenAI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningGateway]:
    home = tmp_path_factory.mktemp("responses-errors")
    catalog = home / "catalog.toml"
    models = {MODEL: "", "test/one-a-minute": "rpm = 1", "test/not-attached": ""}
    catalog.write_text(
        catalog_toml(fake.base_url, models)
        + catalog_toml(slow.base_url("dies"), {"test/dies": ""}, provider="dies")
        + catalog_toml(f"http://127.0.0.1:{free_port()}/v1", {"test/down": ""}, provider="down")
    )
    env = {"MODELYARD_LOAD_LOCAL": "0", "MODELYARD_MAX_BODY_BYTES": str(MAX_BODY)}
    running = start_gateway(home / "data", extra_args=["--catalog", str(catalog)], env=env)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def key(gateway: RunningGateway) -> str:
    headers = {"Authorization": f"Bearer {gateway.admin_key}"}
    url = gateway.base_url + "/admin/apps"
    assert httpx.post(url, json={"name": "errors"}, headers=headers).status_code == 201
    for index, model in enumerate((MODEL, "test/one-a-minute", "test/dies", "test/down")):
        attached = httpx.post(
            f"{url}/errors/models", json={"model": model, "alias": f"M{index}"}, headers=headers
        )
        assert attached.status_code == 201, attached.text
    created = httpx.post(f"{url}/errors/keys", json={}, headers=headers)
    assert created.status_code == 201, created.text
    return str(created.json()["key"])


@pytest.fixture
def client(gateway: RunningGateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.api_url, api_key=key, max_retries=0, timeout=30)


def _error(exc: openai.APIStatusError, kind: str | None = None) -> dict[str, Any]:
    """Check OpenAI's error body; the error object."""
    body = exc.response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) >= {"message", "type", "param", "code"}, body
    assert isinstance(error["message"], str) and error["message"], body
    assert isinstance(error["type"], str), body
    if kind is not None:
        assert error["type"] == kind, body
    return dict(error)


def _post(client: openai.OpenAI, body: dict[str, Any]) -> Response:
    """What the SDK's create() would not send: its plain post() sends the body as given."""
    return client.post("/responses", body=body, cast_to=Response)


# -- the request --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "hi"}, "model"),
        ({"model": MODEL}, "input"),
        ({"model": MODEL, "input": 42}, "input"),
        ({"model": MODEL, "input": [{"type": "no_such_item"}]}, "input"),
        ({"model": MODEL, "input": "hi", "max_output_tokens": "many"}, "max_output_tokens"),
        ({"model": MODEL, "input": "hi", "tools": [{"type": "function"}]}, "tools[0].name"),
        ({"model": MODEL, "input": "hi", "background": True}, "background"),
    ],
)
def test_a_bad_request_names_the_parameter(
    client: openai.OpenAI, fake: FakeOpenAIChat, body: dict[str, Any], param: str
) -> None:
    before = len(fake.received)
    with pytest.raises(openai.BadRequestError) as caught:
        _post(client, body)
    assert caught.value.status_code == 400
    error = _error(caught.value, "invalid_request_error")
    assert str(error["param"]).startswith(param), error
    assert len(fake.received) == before


def test_a_bad_key_is_an_authentication_error(gateway: RunningGateway) -> None:
    client = openai.OpenAI(base_url=gateway.api_url, api_key="sk-not-a-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        client.responses.create(model=MODEL, input="hi")
    assert caught.value.status_code == 401
    _error(caught.value)
    with pytest.raises(openai.AuthenticationError) as caught:
        client.responses.retrieve("resp_0123456789abcdef")
    _error(caught.value)


def test_a_model_not_attached_is_refused_as_chat_completions_refuses_it(
    gateway: RunningGateway, client: openai.OpenAI, key: str
) -> None:
    chat = httpx.post(
        gateway.api_url + "/chat/completions",
        json={"model": "test/not-attached", "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert chat.status_code == 403, chat.text
    with pytest.raises(openai.PermissionDeniedError) as caught:
        client.responses.create(model="test/not-attached", input="hi")
    error = _error(caught.value)
    assert error == chat.json()["error"]


def test_an_unknown_model_is_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model="test/no-such-model", input="hi")
    assert "test/no-such-model" in _error(caught.value)["message"]


def test_an_unknown_previous_response_is_not_found(
    client: openai.OpenAI, fake: FakeOpenAIChat
) -> None:
    before = len(fake.received)
    missing = "resp_0123456789abcdef"
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model=MODEL, input="go on", previous_response_id=missing)
    error = _error(caught.value)
    assert error["message"] == f"Previous response with id '{missing}' not found."
    assert error["param"] == "previous_response_id"
    assert len(fake.received) == before


def test_a_body_over_the_limit_is_413(client: openai.OpenAI, fake: FakeOpenAIChat) -> None:
    before = len(fake.received)
    with pytest.raises(openai.APIStatusError) as caught:
        client.responses.create(model=MODEL, input="x " * MAX_BODY)
    assert caught.value.status_code == 413
    _error(caught.value)
    assert len(fake.received) == before


def test_the_models_rate_limit_is_a_rate_limit_error(client: openai.OpenAI) -> None:
    client.responses.create(model="test/one-a-minute", input="hi", store=False)
    with pytest.raises(openai.RateLimitError) as caught:
        client.responses.create(model="test/one-a-minute", input="hi", store=False)
    assert caught.value.status_code == 429
    _error(caught.value)
    assert int(caught.value.response.headers["retry-after"]) >= 1


# -- the upstream -------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_an_upstream_that_is_down_is_a_server_error(client: openai.OpenAI, stream: bool) -> None:
    """Before the first event the stream has not started: the answer is an HTTP error."""
    with pytest.raises(openai.InternalServerError) as caught:
        if stream:
            list(client.responses.create(model="test/down", input="hi", stream=True))
        else:
            client.responses.create(model="test/down", input="hi")
    assert caught.value.status_code == 502
    _error(caught.value)


def _failed(events: list[Any]) -> None:
    """The stream ends as failed (`response.failed`, or an `error` event), never completed."""
    assert [e.sequence_number for e in events] == list(range(len(events)))
    kinds = [e.type for e in events]
    assert kinds[0] == "response.created"
    assert "response.completed" not in kinds and "response.incomplete" not in kinds
    last = events[-1]
    if last.type == "response.failed":
        assert last.response.status == "failed" and last.response.error is not None
        assert last.response.error.message
        assert last.response.id == events[0].response.id
    else:
        assert last.type == "error" and last.message, kinds
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "".join(f" t{index}" for index in range(DIES_AFTER))  # relayed before it


def test_a_failure_mid_stream_ends_the_stream_as_failed(client: openai.OpenAI) -> None:
    events = list(client.responses.create(model="test/dies", input="hi", stream=True))
    _failed(events)
    for event in events:  # strictly: the SDK parses leniently, leaving out what is missing
        type(event).model_validate(event.to_dict())


def test_the_stream_helper_has_no_final_response_after_a_failure(client: openai.OpenAI) -> None:
    with client.responses.stream(model="test/dies", input="hi") as stream:
        events = list(stream)
        with pytest.raises(RuntimeError, match=r"response\.completed"):
            stream.get_final_response()
    _failed(events)
