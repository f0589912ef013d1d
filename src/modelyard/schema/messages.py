"""The Anthropic Messages request, decoded, validated and translated to a `ChatRequest`.

The gateway plans, routes and bills on the `ChatRequest`; an Anthropic upstream is sent the
body as the client wrote it (`MessagesCall.native`), every other upstream the translation.
The translation is the inverse of providers/anthropic_request.py. Its pieces: the body's
structs (messages_wire.py), turns and blocks as chat messages (messages_content.py), tools,
tool_choice and thinking (messages_tools.py), errors (messages_errors.py). What only
Anthropic can act on (server tools and their result blocks, redacted thinking, signatures,
files uploaded to a container) is accepted and left out of the translation.

Errors read like Anthropic's, `<path>: <what is wrong>` with a dotted path
(`messages.0.content.1.source.media_type: ...`), and `param` is that same path. Unknown
top-level fields (`context_management`, `output_config`, ...) are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelyard.errors import InvalidRequest
from modelyard.schema.chat import ChatRequest, check_chat_request, decode_object
from modelyard.schema.messages_content import system_messages, turn_messages
from modelyard.schema.messages_errors import convert, error
from modelyard.schema.messages_tools import chat_reasoning, chat_tool_choice, chat_tools
from modelyard.schema.messages_wire import MessagesBody


@dataclass(frozen=True, slots=True)
class MessagesCall:
    chat: ChatRequest  # the internal request
    native: dict[str, Any]  # the decoded body exactly as the client sent it (pass-through)
    stream: bool


def parse_messages_request(body: bytes, *, count_tokens: bool = False) -> MessagesCall:
    """Decode, validate and translate; `count_tokens` for /v1/messages/count_tokens, whose
    body has no `max_tokens`."""
    native = decode_object(body)
    parsed = convert(native, MessagesBody)
    if parsed.max_tokens is None and not count_tokens:
        raise InvalidRequest("max_tokens: Field required", param="max_tokens")
    chat = _chat_request(parsed)
    check_chat_request(chat)
    return MessagesCall(chat, native, parsed.stream)


def _chat_request(body: MessagesBody) -> ChatRequest:
    messages = system_messages(body.system)
    last = len(body.messages) - 1
    for index, turn in enumerate(body.messages):
        messages += turn_messages(turn, f"messages.{index}", final=index == last)
    if not messages:
        raise error("messages", "at least one message must have content")
    tools, server_tools = chat_tools(body.tools)
    choice, parallel = chat_tool_choice(body.tool_choice, tools, server_tools)
    return ChatRequest(
        messages=messages,
        model=body.model,
        models=body.models,
        temperature=body.temperature,
        top_p=body.top_p,
        top_k=body.top_k,
        max_tokens=body.max_tokens,
        stop=body.stop_sequences or None,
        tools=tools or None,
        tool_choice=choice,
        parallel_tool_calls=parallel,
        stream=body.stream,
        user=body.metadata.user_id if body.metadata else None,
        session_id=body.session_id,
        reasoning=chat_reasoning(body.thinking),
        provider=body.provider,
    )
