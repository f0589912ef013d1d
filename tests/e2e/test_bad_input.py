"""Every bad request is a 4xx in the OpenAI error shape, mapped to the SDK's exception class."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from tests.e2e.conftest import MODEL
from tests.e2e.server import RunningGateway

USER = [{"role": "user", "content": "hi"}]
TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}

SDK_CASES: list[tuple[str, dict[str, Any], type[openai.APIStatusError], str | None]] = [
    ("unknown model", {"model": "nope/nope"}, openai.NotFoundError, "model"),
    ("empty messages", {"messages": []}, openai.BadRequestError, "messages"),
    (
        "unknown role",
        {"messages": [{"role": "robot", "content": "x"}]},
        openai.BadRequestError,
        "messages[0].role",
    ),
    (
        "content wrong type",
        {"messages": [{"role": "user", "content": {"a": 1}}]},
        openai.BadRequestError,
        "messages[0].content",
    ),
    ("temperature range", {"temperature": 3}, openai.BadRequestError, "temperature"),
    ("temperature type", {"temperature": "warm"}, openai.BadRequestError, "temperature"),
    ("top_p range", {"top_p": -0.1}, openai.BadRequestError, "top_p"),
    (
        "malformed tool",
        {"tools": [{"type": "function", "function": {"description": "x"}}]},
        openai.BadRequestError,
        "tools[0].function.name",
    ),
    (
        "tool_choice names no tool",
        {"tools": [TOOL], "tool_choice": {"type": "function", "function": {"name": "other"}}},
        openai.BadRequestError,
        "tool_choice",
    ),
    (
        "unknown response_format",
        {"response_format": {"type": "xml"}},
        openai.BadRequestError,
        "response_format.type",
    ),
    ("max_tokens above max output", {"max_tokens": 100_000}, openai.BadRequestError, "max_tokens"),
    (
        "prompt longer than context",
        {"messages": [{"role": "user", "content": "hello " * 9000}]},
        openai.BadRequestError,
        "messages",
    ),
    (
        "image to a text-only model",
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "what is it?"},
                        {
                            "type": "image_url",
                            "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="},
                        },
                    ],
                }
            ]
        },
        openai.BadRequestError,
        "messages[0].content[1]",
    ),
    (
        "unsupported json schema",
        {
            "response_format": {
                "type": "json_schema",
                "json_schema": {
                    "name": "x",
                    "schema": {"type": "object", "properties": {"a": {"$ref": "#/nowhere"}}},
                },
            }
        },
        openai.BadRequestError,
        "response_format",
    ),
]


@pytest.mark.parametrize(
    ("case", "fields", "error", "param"), SDK_CASES, ids=[c[0] for c in SDK_CASES]
)
def test_bad_request_maps_to_sdk_exception(
    client: openai.OpenAI,
    case: str,
    fields: dict[str, Any],
    error: type[openai.APIStatusError],
    param: str | None,
) -> None:
    request = {"model": MODEL, "messages": USER, "max_tokens": 4, **fields}
    with pytest.raises(error) as caught:
        client.chat.completions.create(**request)
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["code"] == caught.value.status_code
    assert body["param"] == param
    assert body["message"]


def test_missing_and_wrong_key_are_401(gateway: RunningGateway) -> None:
    for key in ("wrong-key", ""):
        c = openai.OpenAI(base_url=gateway.api_url, api_key=key or "x", max_retries=0)
        if not key:
            c = openai.OpenAI(
                base_url=gateway.api_url,
                api_key="x",
                max_retries=0,
                default_headers={"Authorization": ""},
            )
        with pytest.raises(openai.AuthenticationError) as caught:
            c.chat.completions.create(model=MODEL, messages=USER)  # type: ignore[arg-type]
        assert caught.value.body["code"] == 401  # type: ignore[index]


def test_stream_errors_before_the_first_token_are_plain_http_errors(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope/nope", messages=USER, stream=True)  # type: ignore[arg-type]


def test_haiku_without_provider_keys_is_503_naming_the_env_vars(gateway: RunningGateway) -> None:
    headers = {"Authorization": f"Bearer {gateway.admin_key}"}
    httpx.post(f"{gateway.base_url}/admin/apps", json={"name": "haiku-app"}, headers=headers)
    attached = httpx.post(
        f"{gateway.base_url}/admin/apps/haiku-app/models",
        json={"model": "anthropic/claude-3.5-haiku", "alias": "HAIKU"},
        headers=headers,
    )
    assert attached.status_code == 201, attached.text
    key = attached.json()["config"]["HAIKU_KEY"]
    client = openai.OpenAI(base_url=gateway.api_url, api_key=key, max_retries=0)
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="claude-3-5-haiku", messages=USER)  # type: ignore[arg-type]
    assert caught.value.status_code == 503
    message = caught.value.body["message"]  # type: ignore[index]
    for env in (
        "ANTHROPIC_API_KEY",
        "OPENROUTER_API_KEY",
        "HEROKU_INFERENCE_KEY",
        "AI_GATEWAY_API_KEY",
    ):
        assert env in message


RAW_CASES: list[tuple[str, bytes, int]] = [
    ("invalid json", b'{"model": ', 400),
    ("json array", b"[]", 400),
    ("empty body", b"", 400),
    ("not utf-8", b'{"model": "\xff"}', 400),
]


@pytest.mark.parametrize(("case", "raw", "status"), RAW_CASES, ids=[c[0] for c in RAW_CASES])
def test_malformed_bodies(gateway: RunningGateway, case: str, raw: bytes, status: int) -> None:
    response = httpx.post(
        gateway.api_url + "/chat/completions",
        content=raw,
        headers={
            "Authorization": f"Bearer {gateway.app_key}",
            "Content-Type": "application/json",
        },
    )
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == status and error["type"] == "invalid_request_error"


def test_body_over_the_limit_is_413(gateway: RunningGateway) -> None:
    huge = (
        b'{"model": "x", "messages": [{"role": "user", "content": "' + b"a" * (21 * 2**20) + b'"}]}'
    )
    response = httpx.post(
        gateway.api_url + "/chat/completions",
        content=huge,
        headers={"Authorization": f"Bearer {gateway.app_key}"},
        timeout=30,
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == 413


def test_unknown_route_and_wrong_method_use_the_error_shape(gateway: RunningGateway) -> None:
    missing = httpx.get(gateway.base_url + "/v1/nothing-here")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == 404
    wrong = httpx.get(gateway.api_url + "/chat/completions")
    assert wrong.status_code == 405 and "error" in wrong.json()


def test_server_keeps_serving_after_bad_input(client: openai.OpenAI) -> None:
    for _ in range(3):
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(model=MODEL, messages=[])
    assert client.chat.completions.create(model=MODEL, messages=USER, max_tokens=1).choices  # type: ignore[arg-type]


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


HEAD = (
    b'{"model": "huggingface/smollm2-135m-instruct", '
    b'"messages": [{"role": "user", "content": "hi"}], '
)
DEEP_CASES: list[tuple[str, bytes, str]] = [
    ("unknown field", b'"junk": ' + nested(5000), "junk"),
    (
        "tool parameters",
        b'"tools": [{"type": "function", "function": {"name": "f", "parameters": '
        b'{"type": "object", "properties": {"a": ' + nested(5000) + b"}}}}]",
        "tools[0].function.parameters",
    ),
    (
        "json_schema",
        b'"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": '
        + b'{"a": ' * 5000
        + b"1"
        + b"}" * 5000
        + b"}}",
        "response_format.json_schema.schema.a",
    ),
]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize(("case", "field", "param"), DEEP_CASES, ids=[c[0] for c in DEEP_CASES])
def test_json_nested_5000_deep_is_a_400_naming_the_field(
    gateway: RunningGateway, case: str, field: bytes, param: str, stream: bool
) -> None:
    body = HEAD + field + (b', "stream": true}' if stream else b"}")
    logged_before = len(gateway.log())
    response = httpx.post(
        gateway.api_url + "/chat/completions",
        content=body,
        headers={"Authorization": f"Bearer {gateway.app_key}", "Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and "128 levels" in error["message"]
    logged = gateway.log()[logged_before:]
    assert "Traceback" not in logged and "RecursionError" not in logged


def test_a_logit_bias_key_of_5000_digits_is_a_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=MODEL, messages=USER, max_tokens=1, logit_bias={"9" * 5000: 1}
        )  # type: ignore[arg-type]
    assert caught.value.body["param"] == "logit_bias"  # type: ignore[index]


def test_logit_bias_with_the_largest_token_id_is_served(client: openai.OpenAI) -> None:
    # Far past the model's vocabulary: llama.cpp leaves such ids alone.
    answer = client.chat.completions.create(
        model=MODEL, messages=USER, max_tokens=2, logit_bias={"2147483647": 5, "0": -100}
    )  # type: ignore[arg-type]
    assert answer.choices[0].message.content is not None
