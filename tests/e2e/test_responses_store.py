"""Stored responses through the openai SDK: `store`, `previous_response_id`,
`responses.retrieve` and `responses.delete`, who may see a stored response, and what is
never kept (store false, ZDR keys, an operator who turned storing off, past retention).

A real `modelyard serve` in front of `FakeOpenAIChat` (tests/fakes), which records the
conversation each continued response sends upstream. Its provider is ZDR, so a ZDR key
has somewhere to go.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from openai.types.responses import FunctionToolParam, Response

from tests.e2e.server import RunningGateway, start_gateway
from tests.fakes.openai_chat import FakeOpenAIChat, catalog_toml

MODEL = "test/stored"
RETENTION_S = 2.0
WEATHER: FunctionToolParam = {
    "type": "function",
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    "strict": False,
}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAIChat]:
    with FakeOpenAIChat() as server:
        yield server


def _start(fake: FakeOpenAIChat, home: Path, env: dict[str, str] | None = None) -> RunningGateway:
    catalog = home / "catalog.toml"
    catalog.write_text(catalog_toml(fake.base_url, {MODEL: ""}, zdr=True))
    return start_gateway(
        home / "data",
        extra_args=["--catalog", str(catalog)],
        env={"MODELYARD_LOAD_LOCAL": "0", **(env or {})},
    )


def _client(gateway: RunningGateway, app: str, *, zdr: bool = False) -> openai.OpenAI:
    """A key of `app` (created with the model attached on first use)."""
    admin = {"Authorization": f"Bearer {gateway.admin_key}"}
    apps = gateway.base_url + "/admin/apps"
    if httpx.get(f"{apps}/{app}", headers=admin).status_code == 404:
        assert httpx.post(apps, json={"name": app}, headers=admin).status_code == 201
        attached = httpx.post(f"{apps}/{app}/models", json={"model": MODEL}, headers=admin)
        assert attached.status_code == 201, attached.text
    created = httpx.post(f"{apps}/{app}/keys", json={"zdr": zdr}, headers=admin)
    assert created.status_code == 201, created.text
    assert created.json()["zdr"] is zdr
    key = created.json()["key"]
    return openai.OpenAI(base_url=gateway.api_url, api_key=key, max_retries=0, timeout=30)


@pytest.fixture(scope="module")
def gateway(
    fake: FakeOpenAIChat, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningGateway]:
    running = _start(fake, tmp_path_factory.mktemp("responses-store"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def client(gateway: RunningGateway) -> openai.OpenAI:
    return _client(gateway, "alpha")


def _roles_and_text(fake: FakeOpenAIChat) -> list[tuple[str, str]]:
    """The conversation the upstream got last, as (role, text) pairs."""
    pairs = []
    for message in fake.last_body["messages"]:
        content = message.get("content")
        if isinstance(content, list):
            content = "".join(part["text"] for part in content)
        pairs.append((message["role"], content or ""))
    return pairs


def _not_found(caught: pytest.ExceptionInfo[openai.NotFoundError], response_id: str) -> str:
    """OpenAI's error shape, naming the id; the message."""
    exc = caught.value
    assert exc.status_code == 404
    body = exc.response.json()
    assert set(body["error"]) >= {"message", "type", "param", "code"}, body
    message = body["error"]["message"]
    assert isinstance(message, str) and response_id in message, body
    return str(message)


def _previous_not_found(client: openai.OpenAI, fake: FakeOpenAIChat, previous: str) -> None:
    before = len(fake.received)
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model=MODEL, input="go on", previous_response_id=previous)
    assert _not_found(caught, previous) == f"Previous response with id '{previous}' not found."
    assert caught.value.param == "previous_response_id"
    assert len(fake.received) == before  # nothing went upstream


def _gone(client: openai.OpenAI, response_id: str) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.retrieve(response_id)
    _not_found(caught, response_id)


# -- retrieve and delete ------------------------------------------------------------------


def test_a_stored_response_is_retrieved_as_it_was(
    client: openai.OpenAI, gateway: RunningGateway
) -> None:
    created = client.responses.create(
        model=MODEL, input="remember me", instructions="Be brief.", metadata={"k": "v"}
    )
    assert created.id.startswith("resp_") and created.output_text == "Echo: remember me"
    retrieved = client.responses.retrieve(created.id)
    assert retrieved.to_dict() == created.to_dict()
    # Under /api/v1 too, and for any key of the same app.
    other_key = _client(gateway, "alpha")
    raw = httpx.get(
        f"{gateway.base_url}/api/v1/responses/{created.id}",
        headers={"Authorization": f"Bearer {other_key.api_key}"},
    )
    assert raw.status_code == 200, raw.text
    assert Response.model_validate(raw.json()).to_dict() == created.to_dict()


def test_a_streamed_response_is_stored_too(client: openai.OpenAI) -> None:
    # The raw events: the stream helper's final response adds its own `parsed` fields.
    *_, completed = client.responses.create(model=MODEL, input="stream me", stream=True)
    assert completed.type == "response.completed"
    final = completed.response
    assert final.output_text == "Echo: stream me"
    assert client.responses.retrieve(final.id).to_dict() == final.to_dict()


def test_delete_removes_it(client: openai.OpenAI, fake: FakeOpenAIChat) -> None:
    created = client.responses.create(model=MODEL, input="forget me")
    raw = client.responses.with_raw_response.delete(created.id)
    assert raw.http_response.json() == {"id": created.id, "object": "response", "deleted": True}
    _gone(client, created.id)
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.delete(created.id)
    _not_found(caught, created.id)
    _previous_not_found(client, fake, created.id)


def test_an_unknown_id_is_not_found(client: openai.OpenAI) -> None:
    _gone(client, "resp_0123456789abcdef")


# -- previous_response_id -----------------------------------------------------------------


def test_previous_response_id_continues_the_conversation(
    client: openai.OpenAI, fake: FakeOpenAIChat
) -> None:
    first = client.responses.create(model=MODEL, instructions="Be terse.", input="first question")
    second = client.responses.create(
        model=MODEL,
        instructions="Be kind.",
        input="second question",
        previous_response_id=first.id,
    )
    # The earlier input and output, then the new input; the earlier instructions are not
    # carried over (OpenAI's rule), the new ones lead.
    assert _roles_and_text(fake) == [
        ("system", "Be kind."),
        ("user", "first question"),
        ("assistant", "Echo: first question"),
        ("user", "second question"),
    ]
    assert second.previous_response_id == first.id and second.instructions == "Be kind."
    assert second.output_text == "Echo: second question"
    client.responses.create(model=MODEL, input="third question", previous_response_id=second.id)
    assert _roles_and_text(fake) == [
        ("user", "first question"),
        ("assistant", "Echo: first question"),
        ("user", "second question"),
        ("assistant", "Echo: second question"),
        ("user", "third question"),
    ]


def test_a_streamed_turn_continues_and_is_continued(
    client: openai.OpenAI, fake: FakeOpenAIChat
) -> None:
    first = client.responses.create(model=MODEL, input="one")
    with client.responses.stream(model=MODEL, input="two", previous_response_id=first.id) as stream:
        second = stream.get_final_response()
    assert fake.last_body["stream"] is True
    assert second.previous_response_id == first.id and second.output_text == "Echo: two"
    client.responses.create(model=MODEL, input="three", previous_response_id=second.id)
    assert _roles_and_text(fake) == [
        ("user", "one"),
        ("assistant", "Echo: one"),
        ("user", "two"),
        ("assistant", "Echo: two"),
        ("user", "three"),
    ]


def test_a_function_call_output_continues_a_stored_call(
    client: openai.OpenAI, fake: FakeOpenAIChat
) -> None:
    asked = client.responses.create(
        model=MODEL,
        input="Weather in Paris?",
        tools=[WEATHER],
        tool_choice={"type": "function", "name": "get_weather"},
    )
    (call,) = [item for item in asked.output if item.type == "function_call"]
    answer = client.responses.create(
        model=MODEL,
        previous_response_id=asked.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "Sunny"}],
        tools=[WEATHER],
    )
    messages = fake.last_body["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool"]
    assert messages[1]["tool_calls"][0]["id"] == call.call_id
    assert messages[2]["tool_call_id"] == call.call_id
    assert answer.output_text == "Tool said: Sunny"


# -- what is not kept, and who may not see it ---------------------------------------------


def test_store_false_is_not_kept(client: openai.OpenAI, fake: FakeOpenAIChat) -> None:
    created = client.responses.create(model=MODEL, input="do not keep", store=False)
    assert created.output_text == "Echo: do not keep"
    _gone(client, created.id)
    _previous_not_found(client, fake, created.id)


def test_another_apps_key_cannot_see_it(
    client: openai.OpenAI, gateway: RunningGateway, fake: FakeOpenAIChat
) -> None:
    created = client.responses.create(model=MODEL, input="alpha's own")
    stranger = _client(gateway, "beta")
    _gone(stranger, created.id)
    with pytest.raises(openai.NotFoundError):
        stranger.responses.delete(created.id)
    _previous_not_found(stranger, fake, created.id)
    assert client.responses.retrieve(created.id).id == created.id  # still there for alpha


def test_a_zdr_key_never_stores(
    client: openai.OpenAI, gateway: RunningGateway, fake: FakeOpenAIChat
) -> None:
    zdr = _client(gateway, "alpha", zdr=True)
    created = zdr.responses.create(model=MODEL, input="zero retention", store=True)
    assert created.output_text == "Echo: zero retention"
    with zdr.responses.stream(model=MODEL, input="zero retention, streamed") as stream:
        streamed = stream.get_final_response()
    for response_id in (created.id, streamed.id):
        _gone(zdr, response_id)
        _gone(client, response_id)  # nor for the app's other keys
    _previous_not_found(zdr, fake, created.id)


def test_the_operator_can_turn_storing_off(
    fake: FakeOpenAIChat, tmp_path_factory: pytest.TempPathFactory
) -> None:
    home = tmp_path_factory.mktemp("responses-store-off")
    gateway = _start(fake, home, {"MODELYARD_STORE_RESPONSES": "0"})
    try:
        client = _client(gateway, "alpha")
        created = client.responses.create(model=MODEL, input="not here", store=True)
        assert created.output_text == "Echo: not here"
        _gone(client, created.id)
        _previous_not_found(client, fake, created.id)
    finally:
        gateway.stop()


def test_a_response_past_its_retention_is_gone(
    fake: FakeOpenAIChat, tmp_path_factory: pytest.TempPathFactory
) -> None:
    home = tmp_path_factory.mktemp("responses-retention")
    days = RETENTION_S / 86_400
    gateway = _start(fake, home, {"MODELYARD_RESPONSE_RETENTION_DAYS": f"{days:.10f}"})
    try:
        client = _client(gateway, "alpha")
        started = time.monotonic()
        created = client.responses.create(model=MODEL, input="short-lived")
        assert client.responses.retrieve(created.id).id == created.id
        assert time.monotonic() - started < RETENTION_S  # so the retrieve above was in time
        time.sleep(RETENTION_S + 0.5)
        _gone(client, created.id)
        _previous_not_found(client, fake, created.id)
    finally:
        gateway.stop()


def test_every_worker_finds_a_response_at_once(
    fake: FakeOpenAIChat, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """With `--workers 2` the next request may reach the other process: a response is
    there for it as soon as it has been answered (a client continues at once)."""
    home = tmp_path_factory.mktemp("responses-workers")
    catalog = home / "catalog.toml"
    catalog.write_text(catalog_toml(fake.base_url, {MODEL: ""}))
    gateway = start_gateway(
        home / "data",
        extra_args=["--catalog", str(catalog), "--workers", "2"],
        env={"MODELYARD_LOAD_LOCAL": "0"},
    )
    try:
        headers = {"Authorization": f"Bearer {_client(gateway, 'alpha').api_key}"}
        url = gateway.api_url + "/responses"
        missed = []
        for turn in range(20):  # a new connection each time, to either worker
            created = httpx.post(url, json={"model": MODEL, "input": "hi"}, headers=headers)
            assert created.status_code == 200, created.text
            response_id = created.json()["id"]
            retrieved = httpx.get(f"{url}/{response_id}", headers=headers)
            continued = httpx.post(
                url,
                json={"model": MODEL, "input": "more", "previous_response_id": response_id},
                headers=headers,
            )
            if (retrieved.status_code, continued.status_code) != (200, 200):
                missed.append((turn, retrieved.status_code, continued.status_code))
        assert missed == []
    finally:
        gateway.stop()
