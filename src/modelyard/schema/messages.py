"""The Anthropic Messages request, decoded, validated and translated to a `ChatRequest`.

The gateway plans, routes and bills on the `ChatRequest`; an Anthropic upstream is sent the
body as the client wrote it (`MessagesCall.native`), every other upstream the translation.
The translation is the inverse of providers/anthropic_request.py: `system` becomes a system
message, tool results become tool messages (before the rest of their user turn), tool_use
blocks become tool calls and thinking becomes `reasoning`. What only Anthropic can act on
(server tools and their result blocks, redacted thinking, signatures, files uploaded to a
container) is accepted and left out of the translation.

Errors read like Anthropic's, `<path>: <what is wrong>` with a dotted path
(`messages.0.content.1.source.media_type: ...`), and `param` is that same path. Unknown
top-level fields (`context_management`, `output_config`, ...) are ignored.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

import msgspec

from modelyard.errors import InvalidRequest
from modelyard.schema.chat import (
    AssistantMessage,
    CacheControl,
    ChatRequest,
    FileData,
    FilePart,
    FunctionCall,
    FunctionDef,
    ImagePart,
    ImageUrl,
    Message,
    NamedFunction,
    NamedToolChoice,
    Part,
    PositiveInt,
    ProviderPreferences,
    Reasoning,
    SystemMessage,
    TextPart,
    Tool,
    ToolCall,
    ToolChoice,
    ToolMessage,
    Unit,
    UserMessage,
    check_chat_request,
)
from modelyard.schema.json_depth import check_depth

NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]
_T = TypeVar("_T")
# Anthropic's rule, which allows longer names than OpenAI's (MCP tools' names are long);
# an upstream with a shorter limit refuses such a request itself.
ToolName = Annotated[str, msgspec.Meta(pattern=r"^[a-zA-Z0-9_-]{1,128}$")]
ImageType = Literal["image/jpeg", "image/png", "image/gif", "image/webp"]


@dataclass(frozen=True, slots=True)
class MessagesCall:
    chat: ChatRequest  # the internal request
    native: dict[str, Any]  # the decoded body exactly as the client sent it (pass-through)
    stream: bool


# -- the wire shapes ------------------------------------------------------------------------


class _Text(msgspec.Struct, tag_field="type", tag="text", frozen=True):
    text: str
    cache_control: CacheControl | None = None


class _ImageBase64(msgspec.Struct, tag_field="type", tag="base64", frozen=True):
    media_type: ImageType
    data: NonEmpty


class _Url(msgspec.Struct, tag_field="type", tag="url", frozen=True):
    url: NonEmpty


class _File(msgspec.Struct, tag_field="type", tag="file", frozen=True):
    file_id: NonEmpty


class _Image(msgspec.Struct, tag_field="type", tag="image", frozen=True):
    source: _ImageBase64 | _Url | _File
    cache_control: CacheControl | None = None


class _PdfBase64(msgspec.Struct, tag_field="type", tag="base64", frozen=True):
    media_type: Literal["application/pdf"]
    data: NonEmpty


class _PlainText(msgspec.Struct, tag_field="type", tag="text", frozen=True):
    data: str
    media_type: Literal["text/plain"] = "text/plain"


class _ContentSource(msgspec.Struct, tag_field="type", tag="content", frozen=True):
    content: str | list[_Text | _Image]


class _Document(msgspec.Struct, tag_field="type", tag="document", frozen=True):
    source: _PdfBase64 | _PlainText | _ContentSource | _Url | _File
    title: str | None = None
    cache_control: CacheControl | None = None


class _SearchResult(msgspec.Struct, tag_field="type", tag="search_result", frozen=True):
    content: list[_Text]
    source: str = ""
    title: str = ""


class _ToolReference(msgspec.Struct, tag_field="type", tag="tool_reference", frozen=True):
    pass


_ResultPart = _Text | _Image | _Document | _SearchResult | _ToolReference


class _ToolResult(msgspec.Struct, tag_field="type", tag="tool_result", frozen=True):
    tool_use_id: NonEmpty
    content: str | list[_ResultPart] | None = None
    is_error: bool | None = None
    cache_control: CacheControl | None = None


class _ToolUse(msgspec.Struct, tag_field="type", tag="tool_use", frozen=True):
    id: NonEmpty
    name: NonEmpty
    input: dict[str, Any]


class _Thinking(msgspec.Struct, tag_field="type", tag="thinking", frozen=True):
    thinking: str
    signature: str | None = None


class _RedactedThinking(msgspec.Struct, tag_field="type", tag="redacted_thinking", frozen=True):
    pass


# Blocks of Anthropic's own server tools: history that only an Anthropic model can use.
class _ServerToolUse(msgspec.Struct, tag_field="type", tag="server_tool_use", frozen=True):
    pass


class _WebSearchResult(msgspec.Struct, tag_field="type", tag="web_search_tool_result", frozen=True):
    pass


class _WebFetchResult(msgspec.Struct, tag_field="type", tag="web_fetch_tool_result", frozen=True):
    pass


class _CodeResult(msgspec.Struct, tag_field="type", tag="code_execution_tool_result", frozen=True):
    pass


class _BashResult(
    msgspec.Struct, tag_field="type", tag="bash_code_execution_tool_result", frozen=True
):
    pass


class _EditorResult(
    msgspec.Struct, tag_field="type", tag="text_editor_code_execution_tool_result", frozen=True
):
    pass


class _SearchToolResult(
    msgspec.Struct, tag_field="type", tag="tool_search_tool_result", frozen=True
):
    pass


class _McpToolUse(msgspec.Struct, tag_field="type", tag="mcp_tool_use", frozen=True):
    pass


class _McpToolResult(msgspec.Struct, tag_field="type", tag="mcp_tool_result", frozen=True):
    pass


class _ContainerUpload(msgspec.Struct, tag_field="type", tag="container_upload", frozen=True):
    pass


_ServerBlock = (
    _ServerToolUse
    | _WebSearchResult
    | _WebFetchResult
    | _CodeResult
    | _BashResult
    | _EditorResult
    | _SearchToolResult
    | _McpToolUse
    | _McpToolResult
    | _ContainerUpload
)
_SERVER_BLOCKS = (
    _ServerToolUse,
    _WebSearchResult,
    _WebFetchResult,
    _CodeResult,
    _BashResult,
    _EditorResult,
    _SearchToolResult,
    _McpToolUse,
    _McpToolResult,
    _ContainerUpload,
)
_Block = (
    _Text
    | _Image
    | _Document
    | _SearchResult
    | _ToolResult
    | _ToolUse
    | _Thinking
    | _RedactedThinking
    | _ServerBlock
)
_ALLOWED_BLOCKS: dict[str, tuple[type, ...]] = {
    "user": (_Text, _Image, _Document, _SearchResult, _ToolResult, _ContainerUpload),
    "assistant": (_Text, _ToolUse, _Thinking, _RedactedThinking, *_SERVER_BLOCKS),
    "system": (_Text,),
}
_A_ROLE = {"user": "a user", "assistant": "an assistant", "system": "a system"}
MAX_MESSAGES = 100_000  # Anthropic's limit


class _Turn(msgspec.Struct, frozen=True):
    # "system": instructions given mid-conversation (Claude Code sends them).
    role: Literal["user", "assistant", "system"]
    content: str | list[_Block]


class _CustomTool(msgspec.Struct, frozen=True):
    name: ToolName
    input_schema: dict[str, Any]
    description: str | None = None
    cache_control: CacheControl | None = None
    strict: bool | None = None
    type: Literal["custom"] | None = None


class _ServerTool(msgspec.Struct, frozen=True):
    """Anthropic-defined tools (`web_search_20250305`, `bash_20250124`, ...)."""

    type: NonEmpty
    name: str = ""


class _Auto(msgspec.Struct, tag_field="type", tag="auto", frozen=True):
    disable_parallel_tool_use: bool | None = None


class _Any(msgspec.Struct, tag_field="type", tag="any", frozen=True):
    disable_parallel_tool_use: bool | None = None


class _Named(msgspec.Struct, tag_field="type", tag="tool", frozen=True):
    name: NonEmpty
    disable_parallel_tool_use: bool | None = None


class _NoTool(msgspec.Struct, tag_field="type", tag="none", frozen=True):
    pass


class _Enabled(msgspec.Struct, tag_field="type", tag="enabled", frozen=True):
    budget_tokens: PositiveInt


class _Disabled(msgspec.Struct, tag_field="type", tag="disabled", frozen=True):
    pass


class _Adaptive(msgspec.Struct, tag_field="type", tag="adaptive", frozen=True):
    pass


class _BetweenTools(msgspec.Struct, tag_field="type", tag="between_tools", frozen=True):
    pass


_ThinkingConfig = _Enabled | _Disabled | _Adaptive | _BetweenTools
_ChoiceConfig = _Auto | _Any | _Named | _NoTool


class _Metadata(msgspec.Struct, frozen=True):
    user_id: str | None = None


class _Body(msgspec.Struct, frozen=True):
    model: NonEmpty
    messages: Annotated[list[_Turn], msgspec.Meta(min_length=1, max_length=MAX_MESSAGES)]
    max_tokens: PositiveInt | None = None  # required, but not by count_tokens
    system: str | list[_Text] | None = None
    stop_sequences: list[str] | None = None
    temperature: Unit | None = None
    top_p: Unit | None = None
    top_k: Annotated[int, msgspec.Meta(ge=0)] | None = None
    stream: bool = False
    # Custom and server tools differ by `type`, which custom tools may leave out.
    tools: list[dict[str, Any]] | None = None
    tool_choice: _ChoiceConfig | None = None
    thinking: _ThinkingConfig | None = None
    metadata: _Metadata | None = None
    service_tier: Literal["auto", "standard_only"] | None = None
    # OpenRouter's extensions, as in the Chat Completions request.
    models: list[NonEmpty] | None = None
    provider: ProviderPreferences | None = None
    session_id: str | None = None


# -- decoding -------------------------------------------------------------------------------


def parse_messages_request(body: bytes, *, count_tokens: bool = False) -> MessagesCall:
    """Decode, validate and translate; `count_tokens` for /v1/messages/count_tokens, whose
    body has no `max_tokens`."""
    check_depth(body)
    try:
        native = msgspec.json.decode(body)
    except RecursionError as exc:  # depth is checked above; this is the last line of defence
        raise InvalidRequest("The request body nests JSON too deeply.") from exc
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"The request body is not valid UTF-8: {exc.reason}.") from exc
    if not isinstance(native, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    parsed = _convert(native, _Body)
    if parsed.max_tokens is None and not count_tokens:
        raise InvalidRequest("max_tokens: Field required", param="max_tokens")
    chat = _chat_request(parsed)
    check_chat_request(chat)
    return MessagesCall(chat, native, parsed.stream)


def _convert(value: Any, kind: type[_T], where: str = "") -> _T:
    try:
        return msgspec.convert(value, kind)
    except msgspec.ValidationError as exc:
        raise _invalid(exc, where) from exc


def _invalid(exc: msgspec.ValidationError, where: str) -> InvalidRequest:
    """msgspec's "Expected `int`, got `str` - at `$.messages[0].role`" in Anthropic's words."""
    message, sep, at = str(exc).rpartition(" - at `$")
    if not sep:
        message, at = str(exc), ""
    path = _join(where, _dotted(at.rstrip("`")))
    if message.startswith("Object missing required field"):
        path = _join(path, message.split("`")[1])
        message = "Field required"
    if not path:
        return InvalidRequest(f"The request body is invalid: {message}.")
    return InvalidRequest(f"{path}: {message}", param=path)


def _dotted(msgspec_path: str) -> str:
    """`.messages[0].content[1]` → `messages.0.content.1`; "[...]" (a dict key) is dropped."""
    path = msgspec_path.replace("[...]", "").replace("[", ".").replace("]", "")
    return path.lstrip(".")


def _join(*steps: str) -> str:
    return ".".join(step for step in steps if step)


def _error(path: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"{path}: {message}", param=path)


# -- translation ----------------------------------------------------------------------------


def _chat_request(body: _Body) -> ChatRequest:
    messages = _system(body.system)
    last = len(body.messages) - 1
    for index, turn in enumerate(body.messages):
        messages += _turn(turn, f"messages.{index}", final=index == last)
    if not messages:
        raise _error("messages", "at least one message must have content")
    tools, server_tools = _tools(body.tools)
    choice, parallel = _tool_choice(body.tool_choice, tools, server_tools)
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
        reasoning=_reasoning(body.thinking),
        provider=body.provider,
    )


# Claude Code opens its system prompt with a block for Anthropic's billing whose text
# changes with every prompt: left in, no other upstream could reuse a cached prefix.
BILLING_BLOCK = "x-anthropic-billing-header:"


def _system(system: str | list[_Text] | None) -> list[Message]:
    if not system:
        return []
    if isinstance(system, str):
        return [SystemMessage(content=system)]
    parts: list[Part] = [
        TextPart(b.text, b.cache_control) for b in system if not b.text.startswith(BILLING_BLOCK)
    ]
    return [SystemMessage(content=parts)] if parts else []


def _turn(turn: _Turn, where: str, *, final: bool) -> list[Message]:
    content = turn.content
    if isinstance(content, str):
        if turn.role == "user":
            return [UserMessage(content=content)]
        if turn.role == "system":
            return [SystemMessage(content=content)]
        return [AssistantMessage(content=content)]
    if not content:
        if turn.role == "assistant" and final:
            return []  # an empty prefill asks for nothing
        raise _error(
            where,
            "all messages must have non-empty content "
            "except for the optional final assistant message",
        )
    allowed = _ALLOWED_BLOCKS[turn.role]
    for index, block in enumerate(content):
        if not isinstance(block, allowed):
            kind = type(block).__struct_config__.tag
            raise _error(
                f"{where}.content.{index}.type",
                f"{_A_ROLE[turn.role]} message cannot hold {kind!r} blocks",
            )
    if turn.role == "user":
        return _user_turn(content, where)
    if turn.role == "system":
        texts: list[Part] = [
            TextPart(b.text, b.cache_control) for b in content if isinstance(b, _Text)
        ]
        return [SystemMessage(content=texts)]
    return _assistant_turn(content)


def _user_turn(blocks: list[_Block], where: str) -> list[Message]:
    """Tool results first, as tool messages; then the rest of the turn as one user message.

    Tool messages hold text only, so the images and documents of a tool result move into
    that user message."""
    results: list[Message] = []
    parts: list[Part] = []
    for index, block in enumerate(blocks):
        at = f"{where}.content.{index}"
        if isinstance(block, _ToolResult):
            text, media = _tool_result(block, at)
            results.append(ToolMessage(content=text, tool_call_id=block.tool_use_id))
            parts += media
        elif isinstance(block, _Text | _Image | _Document | _SearchResult):
            parts += _parts(block, at)
        # container uploads are files for Anthropic's code execution: nothing to translate
    if parts:
        results.append(UserMessage(content=parts))
    return results


def _tool_result(block: _ToolResult, where: str) -> tuple[str | list[Part], list[Part]]:
    content = block.content
    if content is None or isinstance(content, str):
        return content or "", []
    text: list[Part] = []
    media: list[Part] = []
    for index, part in enumerate(content):
        if isinstance(part, _ToolReference):
            continue  # a tool-search result: names a tool, carries nothing to read
        for piece in _parts(part, f"{where}.content.{index}"):
            (text if isinstance(piece, TextPart) else media).append(piece)
    return (text or ""), media


def _parts(block: _Text | _Image | _Document | _SearchResult, where: str) -> list[Part]:
    if isinstance(block, _Text):
        return [TextPart(block.text, block.cache_control)]
    if isinstance(block, _Image):
        return [_image(block, where)]
    if isinstance(block, _SearchResult):
        return [TextPart(part.text, part.cache_control) for part in block.content]
    return _document(block, where)


def _image(block: _Image, where: str) -> Part:
    source = block.source
    if isinstance(source, _ImageBase64):
        return ImagePart(ImageUrl(f"data:{source.media_type};base64,{source.data}"))
    if isinstance(source, _Url):
        if not source.url.startswith(("https://", "http://")):
            raise _error(f"{where}.source.url", "must be an http or https URL")
        return ImagePart(ImageUrl(source.url))
    return FilePart(FileData(file_id=source.file_id))


def _document(block: _Document, where: str) -> list[Part]:
    """The inverse of anthropic_request._document_block: files as base64 data: URLs."""
    source, name = block.source, block.title
    if isinstance(source, _PdfBase64):
        return [FilePart(FileData(name, f"data:application/pdf;base64,{source.data}"))]
    if isinstance(source, _PlainText):
        data = base64.b64encode(source.data.encode()).decode()
        return [FilePart(FileData(name, f"data:text/plain;base64,{data}"))]
    if isinstance(source, _Url):
        if not source.url.startswith(("https://", "http://")):
            raise _error(f"{where}.source.url", "must be an http or https URL")
        return [FilePart(FileData(name, source.url))]
    if isinstance(source, _File):
        return [FilePart(FileData(name, file_id=source.file_id))]
    # A document given as content blocks is that content.
    if isinstance(source.content, str):
        return [TextPart(source.content, block.cache_control)]
    where = f"{where}.source.content"
    return [_parts(part, f"{where}.{index}")[0] for index, part in enumerate(source.content)]


def _assistant_turn(blocks: list[_Block]) -> list[Message]:
    text: list[Part] = []
    calls: list[ToolCall] = []
    thinking: list[str] = []
    for block in blocks:
        if isinstance(block, _Text):
            text.append(TextPart(block.text, block.cache_control))
        elif isinstance(block, _ToolUse):
            arguments = msgspec.json.encode(block.input).decode()
            calls.append(ToolCall(block.id, FunctionCall(block.name, arguments)))
        elif isinstance(block, _Thinking):
            thinking.append(block.thinking)
        # redacted thinking and server-tool blocks mean something to Anthropic only
    if not text and not calls:
        return []  # nothing but thinking or server-tool history: nothing to say again
    reasoning = "".join(thinking) or None
    return [AssistantMessage(content=text or None, tool_calls=calls or None, reasoning=reasoning)]


def _tools(raw: list[dict[str, Any]] | None) -> tuple[list[Tool], set[str]]:
    """The custom tools as functions, and the names of the server tools (not translated)."""
    tools: list[Tool] = []
    server: set[str] = set()
    names: set[str] = set()
    for index, entry in enumerate(raw or ()):
        where = f"tools.{index}"
        kind = entry.get("type")
        if kind not in (None, "custom"):
            server.add(_convert(entry, _ServerTool, where).name)
            continue
        tool = _convert(entry, _CustomTool, where)
        if tool.name in names:
            raise _error(f"{where}.name", f"tool names must be unique, {tool.name!r} is repeated")
        names.add(tool.name)
        if tool.input_schema.get("type") != "object":
            raise _error(f"{where}.input_schema.type", "Input should be 'object'")
        function = FunctionDef(tool.name, tool.description, tool.input_schema, tool.strict)
        tools.append(Tool(function, cache_control=tool.cache_control))
    return tools, server


def _tool_choice(
    choice: _ChoiceConfig | None, tools: list[Tool], server: set[str]
) -> tuple[ToolChoice | None, bool | None]:
    """`tool_choice` and `parallel_tool_calls`; a choice that only server tools could meet
    is left to an Anthropic upstream (the native body keeps it)."""
    if choice is None:
        return None, None
    if isinstance(choice, _NoTool):
        return "none", None
    parallel = False if choice.disable_parallel_tool_use and tools else None
    if isinstance(choice, _Named):
        if any(tool.function.name == choice.name for tool in tools):
            return NamedToolChoice(NamedFunction(choice.name)), parallel
        if choice.name in server:
            return None, None
        raise _error("tool_choice.name", f"there is no tool named {choice.name!r} in 'tools'")
    if not tools:
        if isinstance(choice, _Any) and not server:
            raise _error("tool_choice", "'any' needs 'tools' to choose from")
        return None, None
    return ("required" if isinstance(choice, _Any) else "auto"), parallel


def _reasoning(thinking: _ThinkingConfig | None) -> Reasoning | None:
    """Thinking as OpenRouter's `reasoning`, which every provider kind reads: a budget, or
    the model's own choice of how much. "disabled" is Anthropic's default: nothing to ask."""
    if isinstance(thinking, _Enabled):
        return Reasoning(max_tokens=thinking.budget_tokens)
    if isinstance(thinking, _Adaptive | _BetweenTools):
        return Reasoning(enabled=True)
    return None
