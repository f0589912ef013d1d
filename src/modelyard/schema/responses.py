"""The OpenAI Responses request, decoded, validated and translated to a `ChatRequest`.

Items become chat messages: a `message` item by its role, `function_call_output` items
tool messages, and an assistant's turn (its messages, `function_call` and `reasoning`
items up to the next other item) one assistant message, as one chat completion would have
said it: chat wants a turn's calls straight before their outputs, so text after a call
joins the call's message, and reasoning is that message's `reasoning`. Tool messages hold
text only, so the images and files of a run of outputs follow it in one user message.
`instructions` come first, as a system message. A stored response's output items are
items too: `with_history` rebuilds a conversation continued with `previous_response_id`
with the same translation (`items_to_messages`).

Function tools are chat's tools; those of a `namespace` too, named `<namespace>__<name>`
(chat has no namespaces; `function_name` splits a call's name back). Hosted
tools (web search, file search, MCP, ... that OpenAI's and OpenRouter's own servers run)
and custom (free-text) tools are accepted and left out, as are the hosted tools' calls in
the input: there is nothing here to run them, and clients send them anyway (Codex always
offers `web_search`). A `tool_choice` naming one is the model's own choice.

What else the gateway cannot do is a 400 naming the field: files by id (there is no files
API here), item references, items of client-run tools other than functions, background
responses, conversations and stored prompts. Errors read like OpenAI's (`param`
"input[2].call_id"); unknown fields are ignored, as OpenAI and OpenRouter do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, TypeVar

import msgspec

from modelyard.errors import InvalidRequest
from modelyard.schema.chat import (
    AssistantMessage,
    ChatRequest,
    DeveloperMessage,
    FileData,
    FilePart,
    FunctionCall,
    FunctionDef,
    FunctionName,
    ImagePart,
    ImageUrl,
    JsonObjectFormat,
    JsonSchemaFormat,
    JsonSchemaSpec,
    Message,
    NamedFunction,
    NamedToolChoice,
    Part,
    Penalty,
    PositiveInt,
    ProviderPreferences,
    Reasoning,
    ResponseFormat,
    SystemMessage,
    TextFormat,
    TextPart,
    Tool,
    ToolCall,
    ToolChoice,
    ToolMessage,
    Unit,
    UserMessage,
    check_chat_request,
    decode_object,
    validation_error,
)
from modelyard.schema.json_depth import check_depth

NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]
_T = TypeVar("_T")
MAX_ITEMS = 100_000  # as many as a Messages request may hold
# OpenAI's limits on `metadata`.
MAX_METADATA = 16
MAX_METADATA_KEY = 64
MAX_METADATA_VALUE = 512
LOGPROBS = "message.output_text.logprobs"  # the `include` that asks for them
NAMESPACE_SEPARATOR = "__"  # `<namespace>__<name>`, the chat name of a namespace's function
MAX_FUNCTION_NAME = 64  # what OpenAI's chat API takes
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


# -- the wire shapes ------------------------------------------------------------------------


class _InputText(msgspec.Struct, tag_field="type", tag="input_text", frozen=True):
    text: str


class _OutputText(msgspec.Struct, tag_field="type", tag="output_text", frozen=True):
    text: str


class _Refusal(msgspec.Struct, tag_field="type", tag="refusal", frozen=True):
    refusal: str


class _InputImage(msgspec.Struct, tag_field="type", tag="input_image", frozen=True):
    image_url: NonEmpty | None = None
    file_id: str | None = None
    detail: Literal["auto", "low", "high", "original"] | None = None


class _InputFile(msgspec.Struct, tag_field="type", tag="input_file", frozen=True):
    file_data: NonEmpty | None = None
    file_url: NonEmpty | None = None
    file_id: str | None = None
    filename: str | None = None


_Part = _InputText | _OutputText | _Refusal | _InputImage | _InputFile
_ALLOWED_PARTS: dict[str, tuple[type, ...]] = {
    "user": (_InputText, _InputImage, _InputFile),
    "system": (_InputText,),
    "developer": (_InputText,),
    "assistant": (_OutputText, _Refusal, _InputText),
}
_A_ROLE = {
    "user": "a user",
    "system": "a system",
    "developer": "a developer",
    "assistant": "an assistant",
}


class _Message(msgspec.Struct, tag_field="type", tag="message", frozen=True):
    role: Literal["user", "system", "developer", "assistant"]
    content: str | list[_Part]


class _FunctionCall(msgspec.Struct, tag_field="type", tag="function_call", frozen=True):
    call_id: NonEmpty
    name: NonEmpty
    arguments: str
    namespace: NonEmpty | None = None


class _FunctionCallOutput(
    msgspec.Struct, tag_field="type", tag="function_call_output", frozen=True
):
    call_id: NonEmpty
    output: str | list[_InputText | _InputImage | _InputFile]


class _SummaryText(msgspec.Struct, tag_field="type", tag="summary_text", frozen=True):
    text: str


class _ReasoningText(msgspec.Struct, tag_field="type", tag="reasoning_text", frozen=True):
    text: str


class _ReasoningItem(msgspec.Struct, tag_field="type", tag="reasoning", frozen=True):
    summary: list[_SummaryText] = []
    content: list[_ReasoningText] | None = None


_Item = _Message | _FunctionCall | _FunctionCallOutput | _ReasoningItem
_ITEM: Any = _Item  # a union, which mypy does not take for a type[...]
_ITEM_TYPES = ("message", "function_call", "function_call_output", "reasoning")


class _FunctionTool(msgspec.Struct, tag_field="type", tag="function", frozen=True):
    name: FunctionName
    parameters: dict[str, Any] | None = None
    description: str | None = None
    strict: bool | None = None


class _FunctionChoice(msgspec.Struct, tag_field="type", tag="function", frozen=True):
    name: NonEmpty


class _ToolName(msgspec.Struct, frozen=True):
    type: str = "function"
    name: str = ""  # a function's; hosted tools have none


class _Namespace(msgspec.Struct, tag_field="type", tag="namespace", frozen=True):
    name: NonEmpty
    tools: list[dict[str, Any]]
    description: str | None = None


class _AllowedTools(msgspec.Struct, tag_field="type", tag="allowed_tools", frozen=True):
    mode: Literal["auto", "required"]
    tools: list[_ToolName]


class _TextFormat(msgspec.Struct, tag_field="type", tag="text", frozen=True):
    pass


class _JsonObject(msgspec.Struct, tag_field="type", tag="json_object", frozen=True):
    pass


class _JsonSchema(msgspec.Struct, tag_field="type", tag="json_schema", frozen=True):
    name: Annotated[str, msgspec.Meta(pattern=r"^[a-zA-Z0-9_-]{1,64}$")]
    schema: dict[str, Any]
    strict: bool | None = None
    description: str | None = None


class _Text(msgspec.Struct, frozen=True):
    format: _TextFormat | _JsonObject | _JsonSchema | None = None
    verbosity: Literal["low", "medium", "high"] | None = None  # no chat equivalent


class _ReasoningConfig(msgspec.Struct, frozen=True):
    # OpenAI's efforts, and OpenRouter's ("max"; `enabled` and `max_tokens` as in chat).
    effort: Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"] | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None  # no summaries here
    enabled: bool | None = None
    max_tokens: PositiveInt | None = None


class _Body(msgspec.Struct, frozen=True):
    model: NonEmpty | None = None
    input: str | Annotated[list[Any], msgspec.Meta(max_length=MAX_ITEMS)] | None = None
    instructions: str | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: Literal["none", "auto", "required"] | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    text: _Text | None = None
    reasoning: _ReasoningConfig | None = None
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


# -- decoding -------------------------------------------------------------------------------


def parse_responses_request(body: bytes) -> ResponsesCall:
    """Decode, validate and translate a `POST /responses` body."""
    native = decode_object(body)
    try:
        # From the bytes again, not from `native`: msgspec decodes a typed body several
        # times faster than it converts a decoded one.
        parsed = msgspec.json.decode(body, type=_Body)
    except msgspec.ValidationError as exc:
        raise validation_error(exc, "") from exc
    _refuse_unsupported(parsed)
    items = _input_items(parsed.input)
    if not items and parsed.previous_response_id is None:
        raise _error("input", "Missing required parameter: 'input'.")
    found = _tools(parsed.tools)
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


def items_to_messages(items: list[dict[str, Any]], where: str = "input") -> list[Message]:
    """Input or output items as chat messages; `where` names the list in errors."""
    builder = _Messages()
    for index, raw in enumerate(items):
        at = f"{where}[{index}]"
        item = _item(raw, at)
        if item is not None:
            builder.add(item, at)
    return builder.done()


def _convert(value: Any, kind: type[_T], where: str = "") -> _T:
    try:
        return msgspec.convert(value, kind)
    except msgspec.ValidationError as exc:
        raise validation_error(exc, where) from exc


def _item(raw: Any, where: str) -> _Item | None:
    """The item, or None for a hosted tool's call (left out)."""
    typed = _typed(raw, where)
    if typed["type"] in HOSTED_CALLS:
        return None
    item: _Item = _convert(typed, _ITEM, where)
    return item


def _error(param: str, message: str) -> InvalidRequest:
    return InvalidRequest(message, param=param)


def _unsupported(param: str, what: str, instead: str = "") -> InvalidRequest:
    """A 400 such as: Invalid value for 'tools[0].type': 'web_search' tools are not
    supported by this gateway; only 'function' tools are (`instead` after the semicolon)."""
    tail = f"; {instead}" if instead else ""
    return _error(
        param, f"Invalid value for '{param}': {what} not supported by this gateway{tail}."
    )


def _refuse_unsupported(body: _Body) -> None:
    if body.background:
        raise _unsupported("background", "background responses are")
    if body.conversation is not None:
        raise _unsupported("conversation", "conversations are")
    if body.prompt is not None:
        raise _unsupported("prompt", "stored prompts are")
    if body.model is None and not body.models:
        raise _error("model", "Missing required parameter: 'model'.")
    _check_metadata(body.metadata)


def _check_metadata(metadata: dict[str, str] | None) -> None:
    if not metadata:
        return
    if len(metadata) > MAX_METADATA:
        raise _error(
            "metadata",
            f"Invalid 'metadata': too many properties. Expected at most {MAX_METADATA} "
            f"properties, but got {len(metadata)} instead.",
        )
    for key, value in metadata.items():
        if len(key) > MAX_METADATA_KEY:
            raise _error(
                "metadata",
                f"Invalid 'metadata': key {key[:MAX_METADATA_KEY]!r}... is longer than "
                f"{MAX_METADATA_KEY} characters.",
            )
        if len(value) > MAX_METADATA_VALUE:
            raise _error(
                f"metadata.{key}",
                f"Invalid 'metadata.{key}': string too long. Expected a string with at most "
                f"{MAX_METADATA_VALUE} characters, but got {len(value)} instead.",
            )


def _input_items(value: str | list[Any] | None) -> list[dict[str, Any]]:
    """The input as items with their `type` (a string is one user message)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    return [_typed(raw, f"input[{index}]") for index, raw in enumerate(value)]


def _typed(raw: Any, where: str) -> dict[str, Any]:
    """The item with its `type`, which a message may leave out (OpenAI's EasyInputMessage),
    or a 400 for an item this gateway cannot translate."""
    if not isinstance(raw, dict):
        raise _error(where, f"Invalid type for '{where}': expected an object.")
    kind = raw.get("type")
    if kind is None:
        if "role" in raw:
            return {**raw, "type": "message"}
        kind = "item_reference" if "id" in raw else None
    if not isinstance(kind, str | None):
        raise _error(f"{where}.type", f"Invalid type for '{where}.type': expected a string.")
    if kind == "item_reference":
        raise _unsupported(where, "item references are", "send the item itself")
    if kind not in _ITEM_TYPES and kind not in HOSTED_CALLS:
        shown = f"{kind!r} items are" if isinstance(kind, str) else "items without a 'type' are"
        raise _unsupported(f"{where}.type", shown)
    return raw


# -- translation ----------------------------------------------------------------------------


def _chat_request(body: _Body, items: list[dict[str, Any]], found: _Tools) -> ChatRequest:
    tools, choice = _tool_choice(body.tool_choice, found)
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


def _wants_logprobs(body: _Body) -> bool:
    """OpenAI gives the tokens' logprobs when `include` asks for them; `top_logprobs`
    (alternatives at each token) asks for them too."""
    return LOGPROBS in (body.include or ()) or body.top_logprobs is not None


def _instructions(instructions: str | None) -> list[Message]:
    return [SystemMessage(content=instructions)] if instructions else []


@dataclass(slots=True)
class _Turn:
    """An assistant message being built: calls may still join it."""

    content: str | list[Part] | None
    reasoning: str | None
    calls: list[ToolCall] = field(default_factory=list)

    def message(self) -> AssistantMessage | None:
        if self.content is None and not self.calls:
            return None  # an empty assistant item asks for nothing
        return AssistantMessage(self.content, self.calls or None, reasoning=self.reasoning)


class _Messages:
    """Chat messages built item by item (see the module docstring for the rules)."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self._reasoning: list[str] = []  # for the next assistant message
        self._media: list[Part] = []  # of the current run of tool outputs
        self._turn: _Turn | None = None

    def add(self, item: _Item, where: str) -> None:
        if isinstance(item, _FunctionCall):
            check_depth(item.arguments.encode(), param=f"{where}.arguments")
            name = item.name
            if item.namespace is not None:
                name = f"{item.namespace}{NAMESPACE_SEPARATOR}{name}"
            if self._turn is None:
                self._flush()
                self._turn = _Turn(None, None)
            self._think(self._turn)
            self._turn.calls.append(ToolCall(item.call_id, FunctionCall(name, item.arguments)))
            return
        if isinstance(item, _FunctionCallOutput):
            text, media = _output(item.output, f"{where}.output")
            self._flush_turn()
            self.messages.append(ToolMessage(content=text, tool_call_id=item.call_id))
            self._media += media
            return
        turn = self._turn
        if isinstance(item, _ReasoningItem):
            text = "".join(part.text for part in item.content or ())
            text = text or "\n\n".join(part.text for part in item.summary)
            if text:
                self._reasoning.append(text)
            return
        if item.role == "assistant":
            content = _content(item, where) or None
            if turn is not None and turn.calls:
                # Text after calls: still their turn, whose calls their outputs must follow.
                turn.content = _joined(turn.content, content)
            else:
                self._flush()
                turn = self._turn = _Turn(content, None)
            self._think(turn)
        else:
            self._flush()
            self.messages.append(_message(item, where))
            self._reasoning.clear()  # reasoning is an assistant's, before its answer

    def done(self) -> list[Message]:
        self._flush()
        return self.messages

    def _think(self, turn: _Turn) -> None:
        """The reasoning read since the last assistant item is this turn's."""
        if self._reasoning:
            turn.reasoning = "".join([turn.reasoning or "", *self._reasoning])
            self._reasoning.clear()

    def _flush(self) -> None:
        self._flush_turn()
        if self._media:
            self.messages.append(UserMessage(content=self._media))
            self._media = []

    def _flush_turn(self) -> None:
        message = self._turn.message() if self._turn is not None else None
        if message is not None:
            self.messages.append(message)
        self._turn = None


def _joined(
    first: str | list[Part] | None, then: str | list[Part] | None
) -> str | list[Part] | None:
    if first is None or then is None:
        return first if then is None else then
    as_parts = [[TextPart(c)] if isinstance(c, str) else c for c in (first, then)]
    return [*as_parts[0], *as_parts[1]]


def _message(item: _Message, where: str) -> Message:
    content = _content(item, where)
    if not content:
        raise _error(f"{where}.content", f"Invalid '{where}.content': empty content.")
    if item.role == "user":
        return UserMessage(content=content)
    if item.role == "developer":
        return DeveloperMessage(content=content)
    return SystemMessage(content=content)


def _content(item: _Message, where: str) -> str | list[Part]:
    if isinstance(item.content, str):
        return item.content
    allowed = _ALLOWED_PARTS[item.role]
    parts: list[Part] = []
    for index, part in enumerate(item.content):
        at = f"{where}.content[{index}]"
        if not isinstance(part, allowed):
            kind = type(part).__struct_config__.tag
            raise _error(
                f"{at}.type",
                f"Invalid value for '{at}.type': {_A_ROLE[item.role]} message cannot hold "
                f"{kind!r} parts.",
            )
        parts.append(_part(part, at))
    return parts


def _part(part: _Part, where: str) -> Part:
    if isinstance(part, _InputText | _OutputText):
        return TextPart(part.text)
    if isinstance(part, _Refusal):
        return TextPart(part.refusal)
    if isinstance(part, _InputImage):
        if part.file_id is not None:
            raise _unsupported(f"{where}.file_id", "files by id are", "send an image_url")
        if part.image_url is None:
            raise _error(f"{where}.image_url", f"Missing required parameter: '{where}.image_url'.")
        # "original" (no downscaling) is the most detail chat's `detail` can ask for.
        detail = "high" if part.detail == "original" else part.detail
        return ImagePart(ImageUrl(part.image_url, detail))
    if part.file_id is not None:
        raise _unsupported(f"{where}.file_id", "files by id are", "send file_data or file_url")
    data = part.file_data or part.file_url
    if data is None:
        raise _error(
            f"{where}.file_data",
            f"Missing required parameter: '{where}.file_data' (or '{where}.file_url').",
        )
    return FilePart(FileData(part.filename, data))


def _output(
    output: str | list[_InputText | _InputImage | _InputFile], where: str
) -> tuple[str | list[Part], list[Part]]:
    """A function call's output as a tool message's text, and its images and files."""
    if isinstance(output, str):
        return output, []
    text: list[Part] = []
    media: list[Part] = []
    for index, part in enumerate(output):
        piece = _part(part, f"{where}[{index}]")
        (text if isinstance(piece, TextPart) else media).append(piece)
    return (text or ""), media


@dataclass(slots=True)
class _Tools:
    """The function tools offered, and what the translation needs to know of the rest."""

    tools: list[Tool] = field(default_factory=list)
    namespaced: dict[str, tuple[str, str]] = field(default_factory=dict)
    hosted: bool = False  # some were left out

    def add(self, entry: dict[str, Any], where: str, namespace: str | None = None) -> None:
        tool = _convert(entry, _FunctionTool, where)
        name = tool.name
        if namespace is not None:
            name = f"{namespace}{NAMESPACE_SEPARATOR}{tool.name}"
            if len(name) > MAX_FUNCTION_NAME:
                raise _error(
                    f"{where}.name",
                    f"'{where}.name' is too long: with its namespace, {name!r} is more than "
                    f"{MAX_FUNCTION_NAME} characters.",
                )
            self.namespaced[name] = (namespace, tool.name)
        if any(known.function.name == name for known in self.tools):
            raise _error(f"{where}.name", f"Duplicate tool name {name!r} in '{where}.name'.")
        schema = tool.parameters
        if schema is not None and schema.get("type", "object") != "object":
            raise _error(
                f"{where}.parameters",
                f"'{where}.parameters' must be a JSON Schema of type 'object'.",
            )
        self.tools.append(Tool(FunctionDef(name, tool.description, schema, tool.strict)))


def _tools(raw: list[dict[str, Any]] | None) -> _Tools:
    found = _Tools()
    for index, entry in enumerate(raw or ()):
        where = f"tools[{index}]"
        kind = _tool_type(entry, where)
        if kind == "function":
            found.add(entry, where)
        elif kind == "namespace":
            namespace = _convert(entry, _Namespace, where)
            for inner, tool in enumerate(namespace.tools):
                at = f"{where}.tools[{inner}]"
                if _tool_type(tool, at) == "function":
                    found.add(tool, at, namespace.name)
                else:
                    found.hosted = True
        else:
            found.hosted = True
    return found


def _tool_type(tool: dict[str, Any], where: str) -> str:
    kind = tool.get("type")
    if kind is None:
        raise _error(f"{where}.type", f"Missing required parameter: '{where}.type'.")
    if not isinstance(kind, str):
        raise _error(f"{where}.type", f"Invalid type for '{where}.type': expected a string.")
    return kind


def _tool_choice(
    raw: Literal["none", "auto", "required"] | dict[str, Any] | None, found: _Tools
) -> tuple[list[Tool], ToolChoice | None]:
    """The tools offered and the chat `tool_choice`. `allowed_tools` offers only the
    functions it names (OpenAI keeps the rest in the prompt for its cache; the choice is
    the same); a choice of tools left out is left to the model."""
    tools = found.tools
    if raw is None or raw == "none" or raw == "auto":
        # Without tools there is nothing to choose: not a parameter an endpoint must take.
        return tools, raw if tools else None
    choice = _choice(raw)
    if choice is None:
        return tools, None
    if not tools:
        if found.hosted:
            return tools, None
        raise _error("tool_choice", "'tool_choice' is only allowed when 'tools' are specified.")
    names = {tool.function.name for tool in tools}
    if choice == "required":
        return tools, "required"
    if isinstance(choice, _FunctionChoice):
        if choice.name not in names:
            raise _error(
                "tool_choice.name",
                f"'tool_choice' names the function {choice.name!r}, which is not among 'tools'.",
            )
        return tools, NamedToolChoice(NamedFunction(choice.name))
    allowed = {tool.name for tool in choice.tools if tool.type == "function"}
    for index, tool in enumerate(choice.tools):
        if tool.type == "function" and tool.name not in names:
            param = f"tool_choice.tools[{index}].name"
            raise _error(param, f"'{param}' names {tool.name!r}, which is not among 'tools'.")
    return [tool for tool in tools if tool.function.name in allowed], choice.mode


def _choice(
    raw: Literal["required"] | dict[str, Any],
) -> Literal["required"] | _FunctionChoice | _AllowedTools | None:
    """The choice that concerns functions, or None for a hosted tool's."""
    if isinstance(raw, str):
        return raw
    kind = raw.get("type")
    if kind == "function":
        return _convert(raw, _FunctionChoice, "tool_choice")
    if kind == "allowed_tools":
        return _convert(raw, _AllowedTools, "tool_choice")
    if not isinstance(kind, str):
        raise _error("tool_choice.type", "Missing required parameter: 'tool_choice.type'.")
    return None


def _response_format(text: _Text | None) -> ResponseFormat | None:
    fmt = text.format if text is not None else None
    if isinstance(fmt, _TextFormat):
        return TextFormat()
    if isinstance(fmt, _JsonObject):
        return JsonObjectFormat()
    if isinstance(fmt, _JsonSchema):
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


def _reasoning(config: _ReasoningConfig | None) -> Reasoning | None:
    """OpenRouter's `reasoning`, which every provider kind reads; effort "none" turns it off."""
    if config is None:
        return None
    if config.effort == "none":
        return Reasoning(enabled=False)
    effort = _EFFORTS[config.effort] if config.effort is not None else None
    if effort is None and config.max_tokens is None and config.enabled is None:
        return None  # a summary alone asks for nothing a chat upstream can give
    return Reasoning(effort=effort, max_tokens=config.max_tokens, enabled=config.enabled)
