"""The body an anthropic upstream gets on a native call: the client's, with only what it
must not see changed."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from modelyard.catalog import Endpoint, load_catalog
from modelyard.providers.anthropic_native import (
    DIALECT,
    count_body,
    native_body,
    native_headers,
)
from modelyard.providers.base import NativeRequest
from modelyard.providers.http import json_bytes


@pytest.fixture(scope="module")
def endpoint() -> Endpoint:
    model = load_catalog().find("anthropic/claude-3.5-haiku")
    assert model is not None
    found = next(ep for ep in model.endpoints if ep.provider.kind == "anthropic")
    return found


def native(body: dict[str, Any], headers: dict[str, str] | None = None) -> NativeRequest:
    return NativeRequest(DIALECT, body, headers or {})


SIGNED = {"type": "thinking", "thinking": "hm", "signature": "sig-1"}
UNSIGNED = {"type": "thinking", "thinking": "elsewhere", "signature": ""}


def test_the_body_goes_as_sent_but_for_model_and_unknown_fields(endpoint: Endpoint) -> None:
    sent = {
        "model": "claude-3-5-haiku",
        "max_tokens": 100,
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "hi"}],
        "metadata": {"user_id": "u1"},
        "provider": {"order": ["anthropic"]},
        "models": ["x/y"],
        "session_id": "s",
        "x_unknown_field": 1,
        "context_management": {"edits": []},
    }
    body = native_body(native(sent), endpoint, stream=True)
    assert body == {
        "model": endpoint.upstream_model,
        "max_tokens": 100,
        "system": sent["system"],
        "messages": sent["messages"],
        "metadata": {"user_id": "u1"},
        "stream": True,
    }
    assert "stream" not in native_body(native({**sent, "stream": True}), endpoint, stream=False)


def test_beta_fields_go_on_only_with_a_beta_header(endpoint: Endpoint) -> None:
    sent = {"model": "m", "max_tokens": 5, "messages": [], "context_management": {"edits": []}}
    with_beta = native(sent, {"anthropic-beta": "context-management-2025-06-27"})
    assert native_body(with_beta, endpoint, stream=False)["context_management"] == {"edits": []}
    assert native_headers(with_beta) == {"anthropic-beta": "context-management-2025-06-27"}


def test_max_tokens_above_the_endpoints_max_output_is_lowered(endpoint: Endpoint) -> None:
    sent = {"model": "m", "max_tokens": 32_000, "messages": []}
    assert native_body(native(sent), endpoint, stream=False)["max_tokens"] == endpoint.max_output


def test_thinking_without_a_signature_is_left_out_and_signed_thinking_stays(
    endpoint: Endpoint,
) -> None:
    turn = {"role": "assistant", "content": [UNSIGNED, SIGNED, {"type": "text", "text": "ok"}]}
    sent = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "q"}, turn]}
    body = native_body(native(sent), endpoint, stream=False)
    assert body["messages"][1]["content"] == [SIGNED, {"type": "text", "text": "ok"}]
    assert sent["messages"][1] is turn and UNSIGNED in turn["content"]  # the client's untouched


def test_count_tokens_gets_only_its_own_parameters(endpoint: Endpoint) -> None:
    sent = {"model": "m", "max_tokens": 5, "messages": [], "stream": True, "tools": []}
    assert count_body(native(sent), endpoint) == {
        "model": endpoint.upstream_model,
        "messages": [],
        "tools": [],
    }


def test_integers_beyond_64_bits_are_still_written_as_json() -> None:
    schema = {"type": "integer", "maximum": 10**30}
    assert orjson.loads(json_bytes({"a": 1})) == {"a": 1}
    assert (
        json_bytes({"schema": schema})
        == b'{"schema":{"type":"integer","maximum":' + str(10**30).encode() + b"}}"
    )
