"""Answers in Anthropic's shapes, checked against the official SDK's own types and client."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anthropic
import pydantic
import pytest
from anthropic.types import Message, RawMessageStreamEvent

from modelyard.errors import (
    AuthError,
    Conflict,
    Forbidden,
    GatewayError,
    InvalidRequest,
    NoProviderAvailable,
    NotFound,
    PayloadTooLarge,
    PaymentRequired,
    RateLimited,
    RequestTimeout,
    ServerError,
    ServiceUnavailable,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
)
from modelyard.providers.base import Completion, Delta, Finish, ToolCall, ToolCallDelta, Usage
from modelyard.schema.messages_render import (
    MessagesStreamWriter,
    error_body,
    error_type_and_status,
    message_body,
    stop_reason_of,
    usage_body,
)

EVENTS: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(RawMessageStreamEvent)
USAGE = Usage(prompt_tokens=100, completion_tokens=20, cached_tokens=60, cache_write_tokens=30)
ANTHROPIC_USAGE = {
    "input_tokens": 10,
    "cache_creation_input_tokens": 30,
    "cache_read_input_tokens": 60,
    "output_tokens": 20,
}


def completion(**fields: Any) -> Completion:
    defaults: dict[str, Any] = {
        "content": "Hello",
        "finish_reason": "stop",
        "native_finish_reason": "stop",
        "usage": USAGE,
    }
    return Completion(**{**defaults, **fields})


def sse_events(raw: bytes) -> list[dict[str, Any]]:
    """Anthropic's framing exactly: `event: <type>`, `data: <json>`, a blank line."""
    assert raw.endswith(b"\n\n")
    events = []
    for frame in raw[:-2].split(b"\n\n"):
        event_line, data_line = frame.split(b"\n")
        assert event_line.startswith(b"event: ") and data_line.startswith(b"data: ")
        data = json.loads(data_line.removeprefix(b"data: "))
        assert data["type"] == event_line.removeprefix(b"event: ").decode()
        assert data_line == b"data: " + json.dumps(data, separators=(",", ":")).encode()
        events.append(data)
    return events


def test_message_body_is_an_sdk_message() -> None:
    raw = message_body("msg_1", "anthropic/claude-haiku-4.5", completion(), USAGE)
    message = Message.model_validate_json(raw)
    assert message.id == "msg_1"
    assert message.model == "anthropic/claude-haiku-4.5"
    assert message.stop_reason == "end_turn"
    assert message.stop_sequence is None
    assert json.loads(raw)["content"] == [{"type": "text", "text": "Hello"}]
    assert json.loads(raw)["usage"] == ANTHROPIC_USAGE


def test_thinking_text_and_tool_calls_in_order() -> None:
    answer = completion(
        content="Let me look.",
        reasoning="The user wants the file.",
        finish_reason="tool_calls",
        native_finish_reason="tool_calls",
        tool_calls=[
            ToolCall("call_1", "Read", '{"path": "a.py", "n": 100000000000000000000001}'),
            ToolCall("call_2", "Bash", "not json"),
            ToolCall("call_3", "Glob", "[1, 2]"),
            ToolCall("call_4", "Nothing", ""),
        ],
    )
    raw = message_body("msg_2", "m", answer, USAGE)
    message = Message.model_validate_json(raw)
    assert message.stop_reason == "tool_use"
    assert json.loads(raw)["content"] == [
        {"type": "thinking", "thinking": "The user wants the file.", "signature": ""},
        {"type": "text", "text": "Let me look."},
        {
            "type": "tool_use",
            "id": "call_1",
            "name": "Read",
            "input": {"path": "a.py", "n": 100000000000000000000001},
        },
        # Arguments that are not a JSON object cannot be Anthropic's `input`.
        {"type": "tool_use", "id": "call_2", "name": "Bash", "input": {}},
        {"type": "tool_use", "id": "call_3", "name": "Glob", "input": {}},
        {"type": "tool_use", "id": "call_4", "name": "Nothing", "input": {}},
    ]


def test_text_is_left_out_only_beside_tool_calls() -> None:
    calls = [ToolCall("c", "f", "{}")]
    with_calls = json.loads(
        message_body("m", "m", completion(content=None, tool_calls=calls), USAGE)
    )
    assert [block["type"] for block in with_calls["content"]] == ["tool_use"]
    empty = json.loads(message_body("m", "m", completion(content=None), USAGE))
    assert empty["content"] == [{"type": "text", "text": ""}]


@pytest.mark.parametrize(
    ("finish", "native", "expected"),
    [
        ("stop", "stop", "end_turn"),
        ("stop", "eos", "end_turn"),
        ("length", "length", "max_tokens"),
        ("length", "model_context_window_exceeded", "model_context_window_exceeded"),
        ("tool_calls", "function_call", "tool_use"),
        ("content_filter", "content_filter", "refusal"),
        ("error", "error", "end_turn"),
        ("stop", "stop_sequence", "stop_sequence"),
        ("stop", "pause_turn", "pause_turn"),
        ("content_filter", "refusal", "refusal"),
        ("stop", "end_turn", "end_turn"),
        ("mystery", "mystery", "end_turn"),
    ],
)
def test_stop_reasons(finish: str, native: str, expected: str) -> None:
    assert stop_reason_of(finish, native) == expected


def test_a_known_stop_sequence_is_reported(sdk: SdkServer) -> None:
    answer = completion(content="Hell")
    body = message_body("m", "m", answer, USAGE, stop_sequence="o")
    assert Message.model_validate_json(body).stop_sequence == "o"
    writer = MessagesStreamWriter("msg_q", "m")
    raw = writer.delta(Delta(content="Hell"))
    raw += writer.finish(Finish("stop", "stop", USAGE), stop_sequence="o")
    sdk.answer(200, "text/event-stream", raw)
    with sdk.client.messages.stream(model="m", max_tokens=5, messages=[USER]) as stream:
        message = stream.get_final_message()
    assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", "o")
    assert json.loads(body)["stop_reason"] == "stop_sequence"


def test_usage_never_counts_negative_fresh_input() -> None:
    assert usage_body(USAGE) == ANTHROPIC_USAGE
    odd = Usage(prompt_tokens=5, completion_tokens=1, cached_tokens=9)
    assert usage_body(odd)["input_tokens"] == 0


@pytest.mark.parametrize(
    ("error", "kind", "sdk_error"),
    [
        (InvalidRequest("bad"), "invalid_request_error", anthropic.BadRequestError),
        (UpstreamRejected("upstream said no"), "invalid_request_error", anthropic.BadRequestError),
        (AuthError("who"), "authentication_error", anthropic.AuthenticationError),
        (PaymentRequired("pay"), "billing_error", anthropic.PaymentRequiredError),
        (Forbidden("no"), "permission_error", anthropic.PermissionDeniedError),
        (NotFound("gone"), "not_found_error", anthropic.NotFoundError),
        (Conflict("taken"), "invalid_request_error", anthropic.ConflictError),
        (RequestTimeout("slow body"), "timeout_error", anthropic.RequestTimeoutError),
        (PayloadTooLarge("big"), "request_too_large", anthropic.ContentTooLargeError),
        (RateLimited("slow down"), "rate_limit_error", anthropic.RateLimitError),
        (UpstreamRateLimited("slow", retry_after=3), "rate_limit_error", anthropic.RateLimitError),
        (UpstreamTimeout("late"), "timeout_error", anthropic.GatewayTimeoutError),
        (UpstreamError("broke", upstream_status=500), "api_error", anthropic.InternalServerError),
        (UpstreamError("reset"), "api_error", anthropic.InternalServerError),
        (UpstreamError("busy", upstream_status=529), "overloaded_error", anthropic.OverloadedError),
        (UpstreamError("busy", upstream_status=503), "overloaded_error", anthropic.OverloadedError),
        (NoProviderAvailable("none"), "overloaded_error", anthropic.OverloadedError),
        (ServiceUnavailable("redis"), "overloaded_error", anthropic.OverloadedError),
        (ServerError("bug"), "api_error", anthropic.InternalServerError),
    ],
)
def test_errors_raise_the_sdks_matching_exception(
    sdk: SdkServer, error: GatewayError, kind: str, sdk_error: type[anthropic.APIStatusError]
) -> None:
    got_kind, status = error_type_and_status(error)
    assert got_kind == kind
    sdk.answer(status, "application/json", error_body(error))
    with pytest.raises(anthropic.APIStatusError) as caught:
        sdk.client.messages.create(model="m", max_tokens=5, messages=[USER])
    assert type(caught.value) is sdk_error
    assert caught.value.status_code == status
    assert caught.value.body == {"type": "error", "error": {"type": kind, "message": error.message}}


# -- streaming ------------------------------------------------------------------------------

USER = {"role": "user", "content": "hi"}
PROMPT = Usage(prompt_tokens=100, cached_tokens=60, cache_write_tokens=30)


def full_stream() -> tuple[bytes, list[Delta], Finish]:
    deltas = [
        Delta(prompt_usage=PROMPT),
        Delta(reasoning="Think"),
        Delta(reasoning="ing."),
        Delta(content="I'll "),
        Delta(content="", reasoning=None),
        Delta(content="look."),
        Delta(tool_calls=[ToolCallDelta(0, "call_a", "Read", "")]),
        Delta(tool_calls=[ToolCallDelta(0, arguments='{"path"')]),
        Delta(tool_calls=[ToolCallDelta(0, arguments=': "a.py"}')]),
        Delta(tool_calls=[ToolCallDelta(1, "call_b", "Bash", '{"command": "ls"}')]),
        Delta(tool_calls=[ToolCallDelta(2, "call_c", "Noop")]),
    ]
    finish = Finish("tool_calls", "tool_calls", USAGE)
    writer = MessagesStreamWriter("msg_s", "m")
    raw = writer.start(PROMPT) + b"".join(writer.delta(d) for d in deltas) + writer.ping()
    raw += writer.finish(finish, USAGE)
    return raw, deltas, finish


def test_stream_events_are_the_sdks_events() -> None:
    raw, _, _ = full_stream()
    events = sse_events(raw)
    for event in events:
        if event["type"] != "ping":
            EVENTS.validate_python(event)
    shape = [
        (e["type"], e.get("index"), (e.get("content_block") or e.get("delta") or {}).get("type"))
        for e in events
    ]
    assert shape == [
        ("message_start", None, None),
        ("content_block_start", 0, "thinking"),
        ("content_block_delta", 0, "thinking_delta"),
        ("content_block_delta", 0, "thinking_delta"),
        ("content_block_stop", 0, None),
        ("content_block_start", 1, "text"),
        ("content_block_delta", 1, "text_delta"),
        ("content_block_delta", 1, "text_delta"),
        ("content_block_stop", 1, None),
        ("content_block_start", 2, "tool_use"),
        ("content_block_delta", 2, "input_json_delta"),
        ("content_block_delta", 2, "input_json_delta"),
        ("content_block_stop", 2, None),
        ("content_block_start", 3, "tool_use"),
        ("content_block_delta", 3, "input_json_delta"),
        ("content_block_stop", 3, None),
        ("content_block_start", 4, "tool_use"),
        ("ping", None, None),
        ("content_block_stop", 4, None),
        ("message_delta", None, None),
        ("message_stop", None, None),
    ]
    start = events[0]["message"]
    assert start["content"] == [] and start["stop_reason"] is None
    assert start["usage"] == {**ANTHROPIC_USAGE, "output_tokens": 0}
    assert events[-2]["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    assert events[-2]["usage"] == ANTHROPIC_USAGE


def test_sdk_accumulates_the_stream_into_the_non_streamed_message(sdk: SdkServer) -> None:
    raw, _, _ = full_stream()
    sdk.answer(200, "text/event-stream", raw)
    with sdk.client.messages.stream(model="m", max_tokens=5, messages=[USER]) as stream:
        texts = list(stream.text_stream)
        streamed = stream.get_final_message()
    assert texts == ["I'll ", "look."]
    answer = completion(
        content="I'll look.",
        reasoning="Thinking.",
        finish_reason="tool_calls",
        native_finish_reason="tool_calls",
        tool_calls=[
            ToolCall("call_a", "Read", '{"path": "a.py"}'),
            ToolCall("call_b", "Bash", '{"command": "ls"}'),
            ToolCall("call_c", "Noop", ""),
        ],
    )
    sdk.answer(200, "application/json", message_body("msg_s", "m", answer, USAGE))
    created = sdk.client.messages.create(model="m", max_tokens=5, messages=[USER])
    assert streamed.to_dict(exclude_none=True) == created.to_dict(exclude_none=True)
    assert created.content[2].type == "tool_use" and created.content[2].input == {"path": "a.py"}


def test_empty_stream_still_has_one_text_block(sdk: SdkServer) -> None:
    writer = MessagesStreamWriter("msg_e", "m")
    raw = writer.delta(Delta(prompt_usage=PROMPT)) + writer.finish(
        Finish("stop", "stop", USAGE), USAGE
    )
    sdk.answer(200, "text/event-stream", raw)
    with sdk.client.messages.stream(model="m", max_tokens=5, messages=[USER]) as stream:
        message = stream.get_final_message()
    assert message.content[0].type == "text" and message.content[0].text == ""
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == 10 and message.usage.output_tokens == 20


def test_writer_starts_once_and_says_nothing_after_the_end() -> None:
    writer = MessagesStreamWriter("msg_o", "m")
    first = writer.delta(Delta(content="a"))  # starts the message itself
    assert [e["type"] for e in sse_events(first)] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
    ]
    assert writer.start(PROMPT) == b""
    assert writer.delta(Delta(prompt_usage=PROMPT)) == b""
    end = sse_events(writer.finish(Finish("length", "length", USAGE)))
    assert end[-2]["delta"]["stop_reason"] == "max_tokens"
    assert end[-2]["usage"] == ANTHROPIC_USAGE  # the finish's own counts by default
    assert writer.delta(Delta(content="late")) == b""
    assert writer.finish(Finish("stop", "stop", USAGE), USAGE) == b""


def test_text_after_a_tool_call_opens_a_new_block() -> None:
    writer = MessagesStreamWriter("msg_t", "m")
    raw = writer.delta(Delta(tool_calls=[ToolCallDelta(0, "c", "f", "{}")]))
    raw += writer.delta(Delta(content="done", tool_calls=None))
    raw += writer.finish(Finish("stop", "end_turn", USAGE), USAGE)
    starts = [e for e in sse_events(raw) if e["type"] == "content_block_start"]
    assert [(e["index"], e["content_block"]["type"]) for e in starts] == [
        (0, "tool_use"),
        (1, "text"),
    ]


def test_interleaved_tool_arguments_still_accumulate(sdk: SdkServer) -> None:
    writer = MessagesStreamWriter("msg_i", "m")
    raw = writer.start(None)
    for piece in [
        ToolCallDelta(0, "c0", "f", '{"a"'),
        ToolCallDelta(1, "c1", "g", '{"b": 2}'),
        ToolCallDelta(0, arguments=": 1}"),
    ]:
        raw += writer.delta(Delta(tool_calls=[piece]))
    raw += writer.finish(Finish("tool_calls", "tool_calls", USAGE), USAGE)
    sdk.answer(200, "text/event-stream", raw)
    with sdk.client.messages.stream(model="m", max_tokens=5, messages=[USER]) as stream:
        message = stream.get_final_message()
    assert [(b.type, getattr(b, "input", None)) for b in message.content] == [
        ("tool_use", {"a": 1}),
        ("tool_use", {"b": 2}),
    ]


def test_stream_error_event_raises_in_the_sdk(sdk: SdkServer) -> None:
    writer = MessagesStreamWriter("msg_x", "m")
    raw = writer.delta(Delta(content="partial")) + writer.error(
        UpstreamError("busy", upstream_status=529)
    )
    assert sse_events(raw)[-1] == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "busy"},
    }
    assert writer.finish(Finish("stop", "stop", USAGE), USAGE) == b""
    sdk.answer(200, "text/event-stream", raw)
    with (
        pytest.raises(anthropic.APIStatusError) as caught,
        sdk.client.messages.stream(model="m", max_tokens=5, messages=[USER]) as stream,
    ):
        stream.get_final_message()
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "busy"},
    }


# -- a real HTTP server for the SDK ---------------------------------------------------------


@dataclass
class SdkServer:
    client: anthropic.Anthropic
    reply: list[tuple[int, str, bytes]] = field(default_factory=list)

    def answer(self, status: int, content_type: str, body: bytes) -> None:
        self.reply[:] = [(status, content_type, body)]


@pytest.fixture(scope="module")
def sdk() -> Iterator[SdkServer]:
    replies: list[tuple[int, str, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            status, content_type, body = replies[0]
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{server.server_address[1]}"
    client = anthropic.Anthropic(api_key="test", base_url=base_url, max_retries=0)
    try:
        yield SdkServer(client, replies)
    finally:
        client.close()
        server.shutdown()
        server.server_close()
