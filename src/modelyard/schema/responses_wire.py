"""The OpenAI Responses request body as msgspec structs: the items and content parts the
decoder translates, the function tools and choices, `text.format` and `reasoning`, and the
item types of hosted tools that it accepts and leaves out."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from modelyard.schema.chat import FunctionName, Penalty, PositiveInt, ProviderPreferences, Unit
from modelyard.schema.decoding import NonEmpty

MAX_ITEMS = 100_000  # as many as a Messages request may hold
# Calls of tools that OpenAI's servers run: history only OpenAI can use.
HOSTED_CALLS = frozenset(
    {
        "web_search_call",
        "file_search_call",
        "code_interpreter_call",
        "image_generation_call",
        "mcp_call",
        "mcp_list_tools",
        "mcp_approval_request",
        "mcp_approval_response",
        "tool_search_call",
        "tool_search_output",
    }
)


class InputText(msgspec.Struct, tag_field="type", tag="input_text", frozen=True):
    text: str


class OutputText(msgspec.Struct, tag_field="type", tag="output_text", frozen=True):
    text: str


class Refusal(msgspec.Struct, tag_field="type", tag="refusal", frozen=True):
    refusal: str


class InputImage(msgspec.Struct, tag_field="type", tag="input_image", frozen=True):
    image_url: NonEmpty | None = None
    file_id: str | None = None
    detail: Literal["auto", "low", "high", "original"] | None = None


class InputFile(msgspec.Struct, tag_field="type", tag="input_file", frozen=True):
    file_data: NonEmpty | None = None
    file_url: NonEmpty | None = None
    file_id: str | None = None
    filename: str | None = None


ContentPart = InputText | OutputText | Refusal | InputImage | InputFile
ALLOWED_PARTS: dict[str, tuple[type, ...]] = {
    "user": (InputText, InputImage, InputFile),
    "system": (InputText,),
    "developer": (InputText,),
    "assistant": (OutputText, Refusal, InputText),
}


class MessageItem(msgspec.Struct, tag_field="type", tag="message", frozen=True):
    role: Literal["user", "system", "developer", "assistant"]
    content: str | list[ContentPart]


class FunctionCallItem(msgspec.Struct, tag_field="type", tag="function_call", frozen=True):
    call_id: NonEmpty
    name: NonEmpty
    arguments: str
    namespace: NonEmpty | None = None


class FunctionCallOutputItem(
    msgspec.Struct, tag_field="type", tag="function_call_output", frozen=True
):
    call_id: NonEmpty
    output: str | list[InputText | InputImage | InputFile]


class SummaryText(msgspec.Struct, tag_field="type", tag="summary_text", frozen=True):
    text: str


class ReasoningText(msgspec.Struct, tag_field="type", tag="reasoning_text", frozen=True):
    text: str


class ReasoningItem(msgspec.Struct, tag_field="type", tag="reasoning", frozen=True):
    summary: list[SummaryText] = []
    content: list[ReasoningText] | None = None


Item = MessageItem | FunctionCallItem | FunctionCallOutputItem | ReasoningItem
ITEM: Any = Item  # a union, which mypy does not take for a type[...]
ITEM_TYPES = ("message", "function_call", "function_call_output", "reasoning")


class FunctionTool(msgspec.Struct, tag_field="type", tag="function", frozen=True):
    name: FunctionName
    parameters: dict[str, Any] | None = None
    description: str | None = None
    strict: bool | None = None


class FunctionChoice(msgspec.Struct, tag_field="type", tag="function", frozen=True):
    name: NonEmpty


class ToolRef(msgspec.Struct, frozen=True):
    type: str = "function"
    name: str = ""  # a function's; hosted tools have none


class Namespace(msgspec.Struct, tag_field="type", tag="namespace", frozen=True):
    name: NonEmpty
    tools: list[dict[str, Any]]
    description: str | None = None


class AllowedTools(msgspec.Struct, tag_field="type", tag="allowed_tools", frozen=True):
    mode: Literal["auto", "required"]
    tools: list[ToolRef]


class PlainTextFormat(msgspec.Struct, tag_field="type", tag="text", frozen=True):
    pass


class JsonObjectConfig(msgspec.Struct, tag_field="type", tag="json_object", frozen=True):
    pass


class JsonSchemaConfig(msgspec.Struct, tag_field="type", tag="json_schema", frozen=True):
    name: Annotated[str, msgspec.Meta(pattern=r"^[a-zA-Z0-9_-]{1,64}$")]
    schema: dict[str, Any]
    strict: bool | None = None
    description: str | None = None


class TextConfig(msgspec.Struct, frozen=True):
    format: PlainTextFormat | JsonObjectConfig | JsonSchemaConfig | None = None
    verbosity: Literal["low", "medium", "high"] | None = None  # no chat equivalent


class ReasoningConfig(msgspec.Struct, frozen=True):
    # OpenAI's efforts, and OpenRouter's ("max"; `enabled` and `max_tokens` as in chat).
    effort: Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"] | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None  # no summaries here
    enabled: bool | None = None
    max_tokens: PositiveInt | None = None


class ResponsesBody(msgspec.Struct, frozen=True):
    model: NonEmpty | None = None
    input: str | Annotated[list[Any], msgspec.Meta(max_length=MAX_ITEMS)] | None = None
    instructions: str | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: Literal["none", "auto", "required"] | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    text: TextConfig | None = None
    reasoning: ReasoningConfig | None = None
    max_output_tokens: PositiveInt | None = None
    temperature: Annotated[float, msgspec.Meta(ge=0, le=2)] | None = None
    top_p: Unit | None = None
    top_k: Annotated[int, msgspec.Meta(ge=0)] | None = None
    frequency_penalty: Penalty | None = None
    presence_penalty: Penalty | None = None
    metadata: dict[str, str] | None = None
    user: str | None = None
    safety_identifier: str | None = None
    store: bool | None = None
    stream: bool | None = None
    previous_response_id: NonEmpty | None = None
    truncation: Literal["auto", "disabled"] | None = None
    include: list[str] | None = None
    top_logprobs: Annotated[int, msgspec.Meta(ge=0, le=20)] | None = None
    service_tier: str | None = None
    prompt_cache_key: str | None = None
    background: bool | None = None
    conversation: Any = None
    prompt: Any = None
    # OpenRouter's extensions, as in the Chat Completions request.
    models: list[NonEmpty] | None = None
    provider: ProviderPreferences | None = None
    session_id: str | None = None
