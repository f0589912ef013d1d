"""The Anthropic Messages request body as msgspec structs: every block, tool, choice and
thinking setting the decoder accepts, and which blocks each role's message may hold."""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

import msgspec

from modelyard.schema.chat import CacheControl, PositiveInt, ProviderPreferences, Unit
from modelyard.schema.decoding import NonEmpty

# Anthropic's rule, which allows longer names than OpenAI's (MCP tools' names are long);
# an upstream with a shorter limit refuses such a request itself.
ToolName = Annotated[str, msgspec.Meta(pattern=r"^[a-zA-Z0-9_-]{1,128}$")]
ImageType = Literal["image/jpeg", "image/png", "image/gif", "image/webp"]


class TextBlock(msgspec.Struct, tag_field="type", tag="text", frozen=True):
    text: str
    cache_control: CacheControl | None = None


class ImageBase64(msgspec.Struct, tag_field="type", tag="base64", frozen=True):
    media_type: ImageType
    data: NonEmpty


class UrlSource(msgspec.Struct, tag_field="type", tag="url", frozen=True):
    url: NonEmpty


class FileSource(msgspec.Struct, tag_field="type", tag="file", frozen=True):
    file_id: NonEmpty


class ImageBlock(msgspec.Struct, tag_field="type", tag="image", frozen=True):
    source: ImageBase64 | UrlSource | FileSource
    cache_control: CacheControl | None = None


class PdfBase64(msgspec.Struct, tag_field="type", tag="base64", frozen=True):
    media_type: Literal["application/pdf"]
    data: NonEmpty


class PlainTextSource(msgspec.Struct, tag_field="type", tag="text", frozen=True):
    data: str
    media_type: Literal["text/plain"] = "text/plain"


class ContentSource(msgspec.Struct, tag_field="type", tag="content", frozen=True):
    content: str | list[TextBlock | ImageBlock]


class DocumentBlock(msgspec.Struct, tag_field="type", tag="document", frozen=True):
    source: PdfBase64 | PlainTextSource | ContentSource | UrlSource | FileSource
    title: str | None = None
    cache_control: CacheControl | None = None


class SearchResultBlock(msgspec.Struct, tag_field="type", tag="search_result", frozen=True):
    content: list[TextBlock]
    source: str = ""
    title: str = ""


class ToolReference(msgspec.Struct, tag_field="type", tag="tool_reference", frozen=True):
    pass


ResultPart = TextBlock | ImageBlock | DocumentBlock | SearchResultBlock | ToolReference


class ToolResultBlock(msgspec.Struct, tag_field="type", tag="tool_result", frozen=True):
    tool_use_id: NonEmpty
    content: str | list[ResultPart] | None = None
    is_error: bool | None = None
    cache_control: CacheControl | None = None


class ToolUseBlock(msgspec.Struct, tag_field="type", tag="tool_use", frozen=True):
    id: NonEmpty
    name: NonEmpty
    input: dict[str, Any]


class ThinkingBlock(msgspec.Struct, tag_field="type", tag="thinking", frozen=True):
    thinking: str
    signature: str | None = None


class RedactedThinkingBlock(msgspec.Struct, tag_field="type", tag="redacted_thinking", frozen=True):
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
_SERVER_BLOCKS = get_args(_ServerBlock)
Block = (
    TextBlock
    | ImageBlock
    | DocumentBlock
    | SearchResultBlock
    | ToolResultBlock
    | ToolUseBlock
    | ThinkingBlock
    | RedactedThinkingBlock
    | _ServerBlock
)
ALLOWED_BLOCKS: dict[str, tuple[type, ...]] = {
    "user": (
        TextBlock,
        ImageBlock,
        DocumentBlock,
        SearchResultBlock,
        ToolResultBlock,
        _ContainerUpload,
    ),
    "assistant": (TextBlock, ToolUseBlock, ThinkingBlock, RedactedThinkingBlock, *_SERVER_BLOCKS),
    "system": (TextBlock,),
}
MAX_MESSAGES = 100_000  # Anthropic's limit


class Turn(msgspec.Struct, frozen=True):
    # "system": instructions given mid-conversation (Claude Code sends them).
    role: Literal["user", "assistant", "system"]
    content: str | list[Block]


class CustomTool(msgspec.Struct, frozen=True):
    name: ToolName
    input_schema: dict[str, Any]
    description: str | None = None
    cache_control: CacheControl | None = None
    strict: bool | None = None
    type: Literal["custom"] | None = None


class ServerTool(msgspec.Struct, frozen=True):
    """Anthropic-defined tools (`web_search_20250305`, `bash_20250124`, ...)."""

    type: NonEmpty
    name: str = ""


class AutoChoice(msgspec.Struct, tag_field="type", tag="auto", frozen=True):
    disable_parallel_tool_use: bool | None = None


class AnyChoice(msgspec.Struct, tag_field="type", tag="any", frozen=True):
    disable_parallel_tool_use: bool | None = None


class NamedChoice(msgspec.Struct, tag_field="type", tag="tool", frozen=True):
    name: NonEmpty
    disable_parallel_tool_use: bool | None = None


class NoToolChoice(msgspec.Struct, tag_field="type", tag="none", frozen=True):
    pass


class ThinkingEnabled(msgspec.Struct, tag_field="type", tag="enabled", frozen=True):
    budget_tokens: PositiveInt


class ThinkingDisabled(msgspec.Struct, tag_field="type", tag="disabled", frozen=True):
    pass


class ThinkingAdaptive(msgspec.Struct, tag_field="type", tag="adaptive", frozen=True):
    pass


class ThinkingBetweenTools(msgspec.Struct, tag_field="type", tag="between_tools", frozen=True):
    pass


ThinkingConfig = ThinkingEnabled | ThinkingDisabled | ThinkingAdaptive | ThinkingBetweenTools
ToolChoiceConfig = AutoChoice | AnyChoice | NamedChoice | NoToolChoice


class Metadata(msgspec.Struct, frozen=True):
    user_id: str | None = None


class MessagesBody(msgspec.Struct, frozen=True):
    model: NonEmpty
    messages: Annotated[list[Turn], msgspec.Meta(min_length=1, max_length=MAX_MESSAGES)]
    max_tokens: PositiveInt | None = None  # required, but not by count_tokens
    system: str | list[TextBlock] | None = None
    stop_sequences: list[str] | None = None
    temperature: Unit | None = None
    top_p: Unit | None = None
    top_k: Annotated[int, msgspec.Meta(ge=0)] | None = None
    stream: bool = False
    # Custom and server tools differ by `type`, which custom tools may leave out.
    tools: list[dict[str, Any]] | None = None
    tool_choice: ToolChoiceConfig | None = None
    thinking: ThinkingConfig | None = None
    metadata: Metadata | None = None
    service_tier: Literal["auto", "standard_only"] | None = None
    # OpenRouter's extensions, as in the Chat Completions request.
    models: list[NonEmpty] | None = None
    provider: ProviderPreferences | None = None
    session_id: str | None = None
