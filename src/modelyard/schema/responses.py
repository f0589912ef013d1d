"""The OpenAI Responses request, decoded, validated and translated to a `ChatRequest`.

`instructions` come first, as a system message, then the input items as chat messages
(responses_items.py); a stored response's output items are items too: `with_history`
rebuilds a conversation continued with `previous_response_id` with the same translation.
Function tools, those of a `namespace` too, are chat's tools (responses_tools.py); hosted
and custom tools are accepted and left out, as are the hosted tools' calls in the input:
there is nothing here to run them, and clients send them anyway (Codex always offers
`web_search`). `text.format` is chat's `response_format`, `reasoning` OpenRouter's. The
body's structs are in responses_wire.py.

What else the gateway cannot do is a 400 naming the field: files by id (there is no files
API here), item references, items of client-run tools other than functions, background
responses, conversations and stored prompts. Errors read like OpenAI's (`param`
"input[2].call_id", responses_errors.py); unknown fields are ignored, as OpenAI and
OpenRouter do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec

from modelyard.schema.chat import (
    ChatRequest,
    JsonObjectFormat,
    JsonSchemaFormat,
    JsonSchemaSpec,
    Message,
    Reasoning,
    ResponseFormat,
    SystemMessage,
    TextFormat,
    UserMessage,
    check_chat_request,
    decode_object,
    validation_error,
)
from modelyard.schema.responses_errors import error, unsupported
from modelyard.schema.responses_items import input_items, items_to_messages
from modelyard.schema.responses_tools import FunctionTools, chat_tool_choice, function_tools
from modelyard.schema.responses_wire import (
    JsonObjectConfig,
    JsonSchemaConfig,
    PlainTextFormat,
    ReasoningConfig,
    ResponsesBody,
    TextConfig,
)

# OpenAI's limits on `metadata`.
MAX_METADATA = 16
MAX_METADATA_KEY = 64
MAX_METADATA_VALUE = 512
LOGPROBS = "message.output_text.logprobs"  # the `include` that asks for them


@dataclass(frozen=True, slots=True)
class ResponsesCall:
    chat: ChatRequest  # the internal request for this input (instructions + input)
    input_items: list[dict[str, Any]]  # the input as items (a string: one user message)
    previous_response_id: str | None
    store: bool
    instructions: str | None
    metadata: dict[str, str] | None
    stream: bool
    body: dict[str, Any]  # the decoded body, whose request fields the response echoes
    # The chat name of each namespace's function → (namespace, name).
    namespaced: dict[str, tuple[str, str]] = field(default_factory=dict)


def function_name(namespaced: dict[str, tuple[str, str]], chat_name: str) -> tuple[str, str | None]:
    """A called function's name and namespace (None outside any) from its chat name."""
    namespace, name = namespaced.get(chat_name, (None, chat_name))
    return name, namespace


def parse_responses_request(body: bytes) -> ResponsesCall:
    """Decode, validate and translate a `POST /responses` body."""
    native = decode_object(body)
    try:
        # From the bytes again, not from `native`: msgspec decodes a typed body several
        # times faster than it converts a decoded one.
        parsed = msgspec.json.decode(body, type=ResponsesBody)
    except msgspec.ValidationError as exc:
        raise validation_error(exc, "") from exc
    _refuse_unsupported(parsed)
    items = input_items(parsed.input)
    if not items and parsed.previous_response_id is None:
        raise error("input", "Missing required parameter: 'input'.")
    found = function_tools(parsed.tools)
    chat = _chat_request(parsed, items, found)
    check_chat_request(chat)
    return ResponsesCall(
        chat=chat,
        input_items=items,
        previous_response_id=parsed.previous_response_id,
        store=parsed.store is not False,
        instructions=parsed.instructions,
        metadata=parsed.metadata,
        stream=bool(parsed.stream),
        body=native,
        namespaced=found.namespaced,
    )


def with_history(call: ResponsesCall, history: list[dict[str, Any]]) -> ChatRequest:
    """The request with the items of the previous turns before this input (stored input
    and output items, oldest first). Instructions are this request's alone: OpenAI does not
    carry a previous response's instructions over."""
    messages = _instructions(call.instructions)
    messages += items_to_messages([*history, *call.input_items])
    chat = msgspec.structs.replace(call.chat, messages=messages)
    check_chat_request(chat)
    return chat


def _refuse_unsupported(body: ResponsesBody) -> None:
    if body.background:
        raise unsupported("background", "background responses are")
    if body.conversation is not None:
        raise unsupported("conversation", "conversations are")
    if body.prompt is not None:
        raise unsupported("prompt", "stored prompts are")
    if body.model is None and not body.models:
        raise error("model", "Missing required parameter: 'model'.")
    _check_metadata(body.metadata)


def _check_metadata(metadata: dict[str, str] | None) -> None:
    if not metadata:
        return
    if len(metadata) > MAX_METADATA:
        raise error(
            "metadata",
            f"Invalid 'metadata': too many properties. Expected at most {MAX_METADATA} "
            f"properties, but got {len(metadata)} instead.",
        )
    for key, value in metadata.items():
        if len(key) > MAX_METADATA_KEY:
            raise error(
                "metadata",
                f"Invalid 'metadata': key {key[:MAX_METADATA_KEY]!r}... is longer than "
                f"{MAX_METADATA_KEY} characters.",
            )
        if len(value) > MAX_METADATA_VALUE:
            raise error(
                f"metadata.{key}",
                f"Invalid 'metadata.{key}': string too long. Expected a string with at most "
                f"{MAX_METADATA_VALUE} characters, but got {len(value)} instead.",
            )


def _chat_request(
    body: ResponsesBody, items: list[dict[str, Any]], found: FunctionTools
) -> ChatRequest:
    tools, choice = chat_tool_choice(body.tool_choice, found)
    messages = _instructions(body.instructions)
    if isinstance(body.input, str) and body.input:
        # The common case, one user message, without building it as an item first.
        messages.append(UserMessage(content=body.input))
    else:
        messages += items_to_messages(items)
    return ChatRequest(
        messages=messages,
        model=body.model,
        models=body.models,
        temperature=body.temperature,
        top_p=body.top_p,
        top_k=body.top_k,
        frequency_penalty=body.frequency_penalty,
        presence_penalty=body.presence_penalty,
        max_tokens=body.max_output_tokens,
        logprobs=True if _wants_logprobs(body) else None,
        top_logprobs=body.top_logprobs,
        tools=tools or None,
        tool_choice=choice,
        parallel_tool_calls=body.parallel_tool_calls if tools else None,
        response_format=_response_format(body.text),
        stream=bool(body.stream),
        user=body.user or body.safety_identifier,
        # A prompt cache key groups requests that share a prefix: what sticky routing
        # keeps on the endpoint holding that cache.
        session_id=body.session_id or body.prompt_cache_key,
        reasoning=_reasoning(body.reasoning),
        provider=body.provider,
    )


def _wants_logprobs(body: ResponsesBody) -> bool:
    """OpenAI gives the tokens' logprobs when `include` asks for them; `top_logprobs`
    (alternatives at each token) asks for them too."""
    return LOGPROBS in (body.include or ()) or body.top_logprobs is not None


def _instructions(instructions: str | None) -> list[Message]:
    return [SystemMessage(content=instructions)] if instructions else []


def _response_format(text: TextConfig | None) -> ResponseFormat | None:
    fmt = text.format if text is not None else None
    if isinstance(fmt, PlainTextFormat):
        return TextFormat()
    if isinstance(fmt, JsonObjectConfig):
        return JsonObjectFormat()
    if isinstance(fmt, JsonSchemaConfig):
        spec = JsonSchemaSpec(fmt.name, fmt.schema, fmt.strict, fmt.description)
        return JsonSchemaFormat(spec)
    return None


_EFFORTS: dict[str, Literal["minimal", "low", "medium", "high"]] = {
    "minimal": "minimal",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "xhigh": "high",  # the most chat's effort can ask for
    "max": "high",
}


def _reasoning(config: ReasoningConfig | None) -> Reasoning | None:
    """OpenRouter's `reasoning`, which every provider kind reads; effort "none" turns it off."""
    if config is None:
        return None
    if config.effort == "none":
        return Reasoning(enabled=False)
    effort = _EFFORTS[config.effort] if config.effort is not None else None
    if effort is None and config.max_tokens is None and config.enabled is None:
        return None  # a summary alone asks for nothing a chat upstream can give
    return Reasoning(effort=effort, max_tokens=config.max_tokens, enabled=config.enabled)
