"""Answers in the OpenAI Responses shapes, checked against the official SDK's types and client."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import openai
import pydantic
import pytest
from openai.types.responses import (
    FunctionToolParam,
    Response,
    ResponseOutputMessage,
    ResponseOutputText,
    ResponseStreamEvent,
)

from modelyard.errors import (
    GatewayError,
    InvalidRequest,
    RateLimited,
    ServerError,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
)
from modelyard.providers.base import (
    Completion,
    Delta,
    Finish,
    TokenLogprob,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from modelyard.schema.chat import AssistantMessage, FunctionCall
from modelyard.schema.chat import ToolCall as ChatToolCall
from modelyard.schema.responses import ResponsesCall, parse_responses_request
from modelyard.schema.responses_items import items_to_messages
from modelyard.schema.responses_render import (
    ResponsesStreamWriter,
    error_code,
    output_items,
    response_object,
    status_of,
    usage_body,
)
from modelyard.service.call import Billed
from modelyard.store.response_ids import new_response_id

EVENTS: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(ResponseStreamEvent)
RESPONSE_ID = "resp_" + "ab" * 24
SEED = "ab" * 24
CREATED = 1_760_000_000
MODEL = "openai/gpt-5-mini"
USAGE = Usage(
    prompt_tokens=100,
    completion_tokens=20,
    cached_tokens=60,
    cache_write_tokens=5,
    reasoning_tokens=8,
)
WEATHER: FunctionToolParam = {
    "type": "function",
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    "strict": False,
}


def request(**body: Any) -> ResponsesCall:
    return parse_responses_request(json.dumps({"model": MODEL, "input": "hi", **body}).encode())


def completion(**fields: Any) -> Completion:
    defaults: dict[str, Any] = {
        "content": "Hello",
        "finish_reason": "stop",
        "native_finish_reason": "stop",
        "usage": USAGE,
    }
    return Completion(**{**defaults, **fields})


def whole(call: ResponsesCall, answer: Completion, **kwargs: Any) -> dict[str, Any]:
    status, reason = status_of(answer.finish_reason)
    return response_object(
        RESPONSE_ID,
        CREATED,
        MODEL,
        call,
        status=status,
        output=output_items(answer, id_seed=RESPONSE_ID),
        usage=answer.usage,
        incomplete_reason=reason,
        **kwargs,
    )


def sse_events(raw: bytes) -> list[dict[str, Any]]:
    """`event: <type>`, `data: <json>`, a blank line; each event one of the SDK's types,
    numbered from 0."""
    assert raw.endswith(b"\n\n")
    events = []
    for frame in raw[:-2].split(b"\n\n"):
        event_line, data_line = frame.split(b"\n")
        assert event_line.startswith(b"event: ") and data_line.startswith(b"data: ")
        data = json.loads(data_line.removeprefix(b"data: "))
        assert data["type"] == event_line.removeprefix(b"event: ").decode()
        EVENTS.validate_python(data)
        events.append(data)
    assert [event["sequence_number"] for event in events] == list(range(len(events)))
    return events


def test_response_ids_are_resp_and_48_hex() -> None:
    first, second = new_response_id(), new_response_id()
    assert re.fullmatch(r"resp_[0-9a-f]{48}", first)
    assert first != second


def test_a_text_answer_is_one_message_item() -> None:
    body = whole(request(), completion())
    response = Response.model_validate(body)
    assert response.output_text == "Hello"
    assert body["output"] == [
        {
            "id": f"msg_{SEED}_0",
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [
                {"type": "output_text", "text": "Hello", "annotations": [], "logprobs": []}
            ],
        }
    ]
    assert body["output_text"] == "Hello"  # OpenRouter sends the SDK's convenience too
    assert (body["status"], body["error"], body["incomplete_details"]) == ("completed", None, None)
    assert isinstance(body["completed_at"], int)
    assert (body["id"], body["object"], body["created_at"], body["model"]) == (
        RESPONSE_ID,
        "response",
        CREATED,
        MODEL,
    )


def test_reasoning_then_message_then_function_calls() -> None:
    answer = completion(
        content="Checking both.",
        reasoning="Two cities, two calls.",
        finish_reason="tool_calls",
        native_finish_reason="tool_calls",
        tool_calls=[
            ToolCall("call_p", "get_weather", '{"city":"Paris"}'),
            ToolCall("", "get_weather", '{"city":"Rome"}'),
        ],
    )
    body = whole(request(tools=[WEATHER]), answer)
    Response.model_validate(body)
    assert body["output"] == [
        {
            "id": f"rs_{SEED}_0",
            "type": "reasoning",
            "summary": [],
            "content": [{"type": "reasoning_text", "text": "Two cities, two calls."}],
            "status": "completed",
        },
        {
            "id": f"msg_{SEED}_1",
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [
                {"type": "output_text", "text": "Checking both.", "annotations": [], "logprobs": []}
            ],
        },
        {
            "id": f"fc_{SEED}_2",
            "type": "function_call",
            "call_id": "call_p",
            "name": "get_weather",
            "arguments": '{"city":"Paris"}',
            "status": "completed",
        },
        {
            "id": f"fc_{SEED}_3",
            "type": "function_call",
            "call_id": f"call_{SEED}_3",  # an upstream that gave no id gets one
            "name": "get_weather",
            "arguments": '{"city":"Rome"}',
            "status": "completed",
        },
    ]


LOGPROBS = [TokenLogprob("Hel", -0.1, [("Hel", -0.1), ("Hi", -2.5)]), TokenLogprob("lo", -0.2)]
LOGPROBS_JSON = [
    {
        "token": "Hel",
        "logprob": -0.1,
        "bytes": [72, 101, 108],
        "top_logprobs": [
            {"token": "Hel", "logprob": -0.1, "bytes": [72, 101, 108]},
            {"token": "Hi", "logprob": -2.5, "bytes": [72, 105]},
        ],
    },
    {"token": "lo", "logprob": -0.2, "bytes": [108, 111], "top_logprobs": []},
]


def test_logprobs_are_the_output_texts() -> None:
    call = request(include=["message.output_text.logprobs"], top_logprobs=2)
    body = whole(call, completion(logprobs=LOGPROBS))
    response = Response.model_validate(body)
    assert body["output"][0]["content"][0]["logprobs"] == LOGPROBS_JSON
    assert body["top_logprobs"] == 2
    message = response.output[0]
    assert isinstance(message, ResponseOutputMessage)
    part = message.content[0]
    assert isinstance(part, ResponseOutputText) and part.logprobs is not None
    assert [lp.token for lp in part.logprobs] == ["Hel", "lo"]


NAMESPACED = request(
    tools=[
        {
            "type": "namespace",
            "name": "agents",
            "description": "Sub-agents",
            "tools": [{"type": "function", "name": "spawn", "parameters": {"type": "object"}}],
        }
    ]
)


def test_a_namespaced_call_is_named_as_the_client_named_it() -> None:
    answer = completion(content=None, tool_calls=[ToolCall("call_1", "agents__spawn", "{}")])
    items = output_items(answer, id_seed=RESPONSE_ID, call=NAMESPACED)
    assert items[0]["name"] == "spawn" and items[0]["namespace"] == "agents"
    body = response_object(
        RESPONSE_ID, CREATED, MODEL, NAMESPACED, status="completed", output=items, usage=USAGE
    )
    call = Response.model_validate(body).output[0]
    assert call.type == "function_call" and (call.name, call.namespace) == ("spawn", "agents")
    # Outside a namespace there is no `namespace` key (OpenRouter's schema has no null).
    plain = output_items(answer, id_seed=RESPONSE_ID)
    assert plain[0]["name"] == "agents__spawn" and "namespace" not in plain[0]
    # And the stored items read back under the chat name.
    assert items_to_messages(items, "output")[0] == AssistantMessage(
        tool_calls=[ChatToolCall("call_1", FunctionCall("agents__spawn", "{}"))]
    )


def test_a_streamed_namespaced_call() -> None:
    w = writer(NAMESPACED)
    raw = w.start() + w.delta(Delta(tool_calls=[ToolCallDelta(0, "call_1", "agents__spawn", "{}")]))
    events = sse_events(raw + w.finish(billed("tool_calls")))
    added = next(e for e in events if e["type"] == "response.output_item.added")["item"]
    assert (added["name"], added["namespace"]) == ("spawn", "agents")
    assert events[-1]["response"]["output"][0]["namespace"] == "agents"


def test_only_tool_calls_still_has_no_empty_message_but_nothing_at_all_has_one() -> None:
    calls = [ToolCall("call_1", "get_weather", "{}")]
    only_calls = output_items(completion(content=None, tool_calls=calls), id_seed=RESPONSE_ID)
    assert [item["type"] for item in only_calls] == ["function_call"]
    nothing = output_items(completion(content=None), id_seed=RESPONSE_ID)
    assert [(item["type"], item["content"][0]["text"]) for item in nothing] == [("message", "")]


def test_output_items_read_back_as_the_assistant_turn() -> None:
    answer = completion(
        content="Checking.",
        reasoning="hm",
        tool_calls=[ToolCall("call_1", "get_weather", '{"city":"Paris"}')],
    )
    messages = items_to_messages(output_items(answer, id_seed=RESPONSE_ID), "output")
    assert len(messages) == 1
    message = messages[0]
    assert isinstance(message, AssistantMessage)
    assert message.reasoning == "hm"
    assert [call.id for call in message.tool_calls or ()] == ["call_1"]


@pytest.mark.parametrize(
    ("finish", "status", "reason"),
    [
        ("stop", "completed", None),
        ("tool_calls", "completed", None),
        ("length", "incomplete", "max_output_tokens"),
        ("content_filter", "incomplete", "content_filter"),
        ("error", "failed", None),
    ],
)
def test_status_from_the_finish_reason(finish: str, status: str, reason: str | None) -> None:
    assert status_of(finish) == (status, reason)
    body = whole(request(), completion(finish_reason=finish, native_finish_reason=finish))
    response = Response.model_validate(body)
    assert response.status == status
    assert body["incomplete_details"] == (None if reason is None else {"reason": reason})
    item_status = "completed" if status == "completed" else "incomplete"
    assert body["output"][0]["status"] == item_status
    assert (body["completed_at"] is None) == (status != "completed")


def test_usage_in_openai_terms_with_openrouters_cost() -> None:
    assert usage_body(USAGE) == {
        "input_tokens": 100,
        "input_tokens_details": {"cached_tokens": 60, "cache_write_tokens": 5},
        "output_tokens": 20,
        "output_tokens_details": {"reasoning_tokens": 8},
        "total_tokens": 120,
    }
    body = whole(request(), completion(), cost=Decimal("0.00125"))
    assert body["usage"]["cost"] == 0.00125
    response = Response.model_validate(body)
    assert response.usage is not None
    assert response.usage.input_tokens_details.cached_tokens == 60


def test_request_fields_are_echoed() -> None:
    call = request(
        instructions="Be brief.",
        metadata={"run": "7"},
        tools=[WEATHER],
        tool_choice={"type": "function", "name": "get_weather"},
        parallel_tool_calls=False,
        temperature=0.3,
        top_p=0.8,
        frequency_penalty=0.1,
        presence_penalty=0.2,
        max_output_tokens=500,
        previous_response_id="resp_prev",
        store=False,
        text={"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}}},
        reasoning={"effort": "low", "summary": "auto"},
        truncation="auto",
        user="u1",
        safety_identifier="s1",
        prompt_cache_key="k1",
    )
    body = whole(call, completion())
    response = Response.model_validate(body)
    assert response.instructions == "Be brief."
    assert response.metadata == {"run": "7"}
    assert body["tools"] == [WEATHER]
    assert body["tool_choice"] == {"type": "function", "name": "get_weather"}
    assert response.parallel_tool_calls is False
    assert (response.temperature, response.top_p, response.max_output_tokens) == (0.3, 0.8, 500)
    assert (body["frequency_penalty"], body["presence_penalty"]) == (0.1, 0.2)
    assert (response.previous_response_id, body["store"]) == ("resp_prev", False)
    assert body["text"] == {
        "format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}},
        "verbosity": "medium",
    }
    assert body["reasoning"] == {"effort": "low", "summary": "auto"}
    assert (response.truncation, response.user) == ("auto", "u1")
    assert (body["safety_identifier"], body["prompt_cache_key"]) == ("s1", "k1")


def test_defaults_are_openais() -> None:
    body = whole(request(), completion())
    assert body["tools"] == []
    # A tool as OpenAI echoes it: strict unless told otherwise, parameters even if none.
    tool = whole(request(tools=[{"type": "function", "name": "now"}]), completion())["tools"]
    assert tool == [{"type": "function", "name": "now", "parameters": None, "strict": True}]
    hosted = whole(request(tools=[{"type": "web_search"}]), completion())
    assert hosted["tools"] == [{"type": "web_search"}]
    Response.model_validate(hosted)
    assert body["tool_choice"] == "auto"
    assert body["parallel_tool_calls"] is True
    assert body["text"] == {"format": {"type": "text"}, "verbosity": "medium"}
    assert body["truncation"] == "disabled"
    assert body["metadata"] == {}
    assert body["store"] is True
    assert body["instructions"] is None
    assert body["reasoning"] is None
    assert body["temperature"] is None


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (RateLimited("slow down"), "rate_limit_exceeded"),
        (UpstreamRateLimited("upstream busy"), "rate_limit_exceeded"),
        (InvalidRequest("bad image"), "invalid_prompt"),
        (UpstreamRejected("refused", upstream_status=400), "invalid_prompt"),
        (UpstreamError("boom"), "server_error"),
        (UpstreamTimeout("slow"), "server_error"),
        (ServerError("bug"), "server_error"),
    ],
)
def test_a_failed_response_carries_the_error(error: GatewayError, code: str) -> None:
    assert error_code(error) == code
    body = response_object(
        RESPONSE_ID, CREATED, MODEL, request(), status="failed", output=[], usage=None, error=error
    )
    response = Response.model_validate(body)
    assert response.status == "failed"
    assert body["error"] == {"code": code, "message": error.message}
    assert body["usage"] is None


# -- streaming ------------------------------------------------------------------------------


def writer(call: ResponsesCall | None = None) -> ResponsesStreamWriter:
    return ResponsesStreamWriter(RESPONSE_ID, CREATED, MODEL, call or request())


def billed(finish: str = "stop", usage: Usage = USAGE) -> Billed:
    return Billed(finish, finish, usage, Decimal("0.002"))


def test_a_text_stream() -> None:
    w = writer()
    raw = w.start() + w.delta(Delta(content="Hel")) + w.delta(Delta(content="lo"))
    ending = billed()
    raw += w.finish(ending, cost=ending.cost)
    events = sse_events(raw)
    message_id = f"msg_{SEED}_0"
    assert [event["type"] for event in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    for opening in events[:2]:
        assert opening["response"]["status"] == "in_progress"
        assert opening["response"]["output"] == []
    assert events[2]["item"] == {
        "id": message_id,
        "type": "message",
        "status": "in_progress",
        "role": "assistant",
        "content": [],
    }
    assert {e["item_id"] for e in events[3:8]} == {message_id}
    assert {e["output_index"] for e in events[2:9]} == {0}
    assert [e["delta"] for e in events[4:6]] == ["Hel", "lo"]
    assert events[6]["text"] == "Hello"
    assert events[7]["part"]["text"] == "Hello"
    assert events[8]["item"]["status"] == "completed"
    final = events[9]["response"]
    assert final["status"] == "completed"
    assert final["output"] == w.output == [events[8]["item"]]
    assert final["usage"] == usage_body(USAGE, Decimal("0.002"))
    assert final["output_text"] == "Hello"


def test_a_stream_of_reasoning_text_and_interleaved_parallel_calls() -> None:
    w = writer(request(tools=[WEATHER]))
    raw = w.start()
    raw += w.delta(Delta(reasoning="Two "))
    raw += w.delta(Delta(reasoning="calls."))
    raw += w.delta(Delta(content="Checking."))
    raw += w.delta(Delta(tool_calls=[ToolCallDelta(0, "call_p", "get_weather", '{"city":')]))
    raw += w.delta(Delta(tool_calls=[ToolCallDelta(1, "call_r", "get_weather", '{"city":"Rome"}')]))
    raw += w.delta(Delta(tool_calls=[ToolCallDelta(0, None, None, '"Paris"}')]))
    raw += w.finish(billed("tool_calls"))
    events = sse_events(raw)
    kinds = [event["type"] for event in events]
    assert kinds[2:8] == [
        "response.output_item.added",
        "response.content_part.added",
        "response.reasoning_text.delta",
        "response.reasoning_text.delta",
        "response.reasoning_text.done",
        "response.content_part.done",
    ]
    added = [e["item"] for e in events if e["type"] == "response.output_item.added"]
    assert [(item["type"], item["id"]) for item in added] == [
        ("reasoning", f"rs_{SEED}_0"),
        ("message", f"msg_{SEED}_1"),
        ("function_call", f"fc_{SEED}_2"),
        ("function_call", f"fc_{SEED}_3"),
    ]
    assert added[2]["arguments"] == "" and added[2]["call_id"] == "call_p"
    argument_deltas = [
        (e["output_index"], e["delta"])
        for e in events
        if e["type"] == "response.function_call_arguments.delta"
    ]
    # The late piece of the first call goes to its item, which is still open.
    assert argument_deltas == [(2, '{"city":'), (3, '{"city":"Rome"}'), (2, '"Paris"}')]
    done = {
        e["output_index"]: e["arguments"]
        for e in events
        if e["type"] == "response.function_call_arguments.done"
    }
    assert done == {2: '{"city":"Paris"}', 3: '{"city":"Rome"}'}
    assert kinds[-1] == "response.completed"
    final = events[-1]["response"]
    assert final["output"] == w.output
    assert [item["status"] for item in final["output"]] == ["completed"] * 4
    expected = output_items(
        completion(
            content="Checking.",
            reasoning="Two calls.",
            tool_calls=[
                ToolCall("call_p", "get_weather", '{"city":"Paris"}'),
                ToolCall("call_r", "get_weather", '{"city":"Rome"}'),
            ],
        ),
        id_seed=RESPONSE_ID,
    )
    # What was streamed is what a whole response would have held.
    assert final["output"] == expected


def test_a_stream_carries_each_pieces_logprobs_and_gathers_them() -> None:
    w = writer(request(top_logprobs=2))
    raw = w.start() + w.delta(Delta(content="Hel", logprobs=LOGPROBS[:1]))
    raw += w.delta(Delta(content="lo", logprobs=LOGPROBS[1:])) + w.finish(billed())
    events = sse_events(raw)
    deltas = [e["logprobs"] for e in events if e["type"] == "response.output_text.delta"]
    assert deltas == [LOGPROBS_JSON[:1], LOGPROBS_JSON[1:]]
    done = next(e for e in events if e["type"] == "response.output_text.done")
    assert done["logprobs"] == LOGPROBS_JSON
    part = next(e for e in events if e["type"] == "response.content_part.done")["part"]
    assert part["logprobs"] == LOGPROBS_JSON
    assert w.output[0]["content"][0]["logprobs"] == LOGPROBS_JSON


def test_a_stream_with_nothing_in_it_ends_with_an_empty_message() -> None:
    w = writer()
    events = sse_events(w.start() + w.finish(billed()))
    assert [event["type"] for event in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert events[-1]["response"]["output_text"] == ""


def test_a_stream_cut_by_max_output_tokens_is_incomplete() -> None:
    w = writer(request(max_output_tokens=5))
    raw = w.start() + w.delta(Delta(content="Once upon")) + w.finish(billed("length"))
    events = sse_events(raw)
    assert events[-1]["type"] == "response.incomplete"
    response = events[-1]["response"]
    assert response["status"] == "incomplete"
    assert response["incomplete_details"] == {"reason": "max_output_tokens"}
    assert response["output"][0]["status"] == "incomplete"
    assert events[-2] == {
        "type": "response.output_item.done",
        "sequence_number": len(events) - 2,
        "output_index": 0,
        "item": response["output"][0],
    }


def test_a_stream_that_fails_midway_ends_with_response_failed() -> None:
    w = writer()
    raw = w.start() + w.delta(Delta(content="Par")) + w.error(UpstreamError("connection reset"))
    events = sse_events(raw)
    assert events[-1]["type"] == "response.failed"
    response = events[-1]["response"]
    assert response["error"] == {"code": "server_error", "message": "connection reset"}
    assert response["output"] == w.output
    assert w.output[0]["status"] == "incomplete"
    assert w.output[0]["content"][0]["text"] == "Par"
    assert w.delta(Delta(content="more")) == b""
    assert w.finish(billed()) == b""


def test_the_first_event_opens_the_stream_once() -> None:
    w = writer()
    events = sse_events(w.delta(Delta(content="a")) + w.start() + w.finish(billed()))
    assert [e["type"] for e in events].count("response.created") == 1


def test_finish_takes_a_providers_finish_and_the_billed_usage() -> None:
    w = writer()
    finish = Finish("stop", "stop", Usage(prompt_tokens=1))
    events = sse_events(w.finish(finish, USAGE, cost=Decimal("0.5")))
    assert events[-1]["response"]["usage"] == usage_body(USAGE, Decimal("0.5"))


def test_keepalive_is_an_sse_comment() -> None:
    assert writer().keepalive() == b": keep-alive\n\n"


# -- a real HTTP server for the SDK ---------------------------------------------------------


@dataclass
class SdkServer:
    client: openai.OpenAI
    reply: list[tuple[str, bytes]] = field(default_factory=list)

    def answer(self, content_type: str, body: bytes) -> None:
        self.reply[:] = [(content_type, body)]


@pytest.fixture(scope="module")
def sdk() -> Iterator[SdkServer]:
    replies: list[tuple[str, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            content_type, body = replies[0]
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    client = openai.OpenAI(api_key="test", base_url=base_url, max_retries=0)
    try:
        yield SdkServer(client, replies)
    finally:
        client.close()
        server.shutdown()
        server.server_close()


def tool_stream() -> bytes:
    w = writer(request(tools=[WEATHER]))
    return (
        w.start()
        + w.delta(Delta(reasoning="Look it up."))
        + w.delta(Delta(content="Let me "))
        + w.delta(Delta(content="check."))
        + w.delta(Delta(tool_calls=[ToolCallDelta(0, "call_p", "get_weather", '{"city"')]))
        + w.delta(Delta(tool_calls=[ToolCallDelta(0, None, None, ':"Paris"}')]))
        + w.finish(billed("tool_calls"))
    )


def test_the_sdk_streams_text_and_function_calls(sdk: SdkServer) -> None:
    sdk.answer("text/event-stream", tool_stream())
    with sdk.client.responses.stream(model=MODEL, input="hi", tools=[WEATHER]) as stream:
        texts = [event.delta for event in stream if event.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert texts == ["Let me ", "check."]
    assert final.id == RESPONSE_ID
    assert final.output_text == "Let me check."
    calls = [item for item in final.output if item.type == "function_call"]
    assert [(c.call_id, c.name, c.arguments) for c in calls] == [
        ("call_p", "get_weather", '{"city":"Paris"}')
    ]
    assert final.usage is not None and final.usage.total_tokens == 120


def test_the_sdk_reads_a_raw_event_stream(sdk: SdkServer) -> None:
    sdk.answer("text/event-stream", tool_stream())
    events = list(sdk.client.responses.create(model=MODEL, input="hi", stream=True))
    assert events[0].type == "response.created"
    assert events[-1].type == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))


def test_the_sdk_reads_a_whole_response(sdk: SdkServer) -> None:
    answer = completion(tool_calls=[ToolCall("call_1", "get_weather", '{"city":"Rome"}')])
    sdk.answer("application/json", json.dumps(whole(request(tools=[WEATHER]), answer)).encode())
    response = sdk.client.responses.create(model=MODEL, input="hi")
    assert response.output_text == "Hello"
    assert response.status == "completed"
    call = response.output[1]
    assert call.type == "function_call" and call.arguments == '{"city":"Rome"}'
