"""The turns of a Messages request as chat messages: `system` a system message, tool
results tool messages (before the rest of their user turn), tool_use blocks tool calls and
thinking `reasoning`. Redacted thinking, signatures, server tools' blocks and container
uploads mean something to Anthropic only and are left out."""

from __future__ import annotations

import base64

import msgspec

from modelyard.schema.chat import (
    AssistantMessage,
    FileData,
    FilePart,
    FunctionCall,
    ImagePart,
    ImageUrl,
    Message,
    Part,
    SystemMessage,
    TextPart,
    ToolCall,
    ToolMessage,
    UserMessage,
)
from modelyard.schema.decoding import A_ROLE, disallowed_kind, text_and_media
from modelyard.schema.messages_errors import error
from modelyard.schema.messages_wire import (
    ALLOWED_BLOCKS,
    Block,
    DocumentBlock,
    FileSource,
    ImageBase64,
    ImageBlock,
    PdfBase64,
    PlainTextSource,
    SearchResultBlock,
    TextBlock,
    ThinkingBlock,
    ToolReference,
    ToolResultBlock,
    ToolUseBlock,
    Turn,
    UrlSource,
)

# Claude Code opens its system prompt with a block for Anthropic's billing whose text
# changes with every prompt: left in, no other upstream could reuse a cached prefix.
BILLING_BLOCK = "x-anthropic-billing-header:"


def system_messages(system: str | list[TextBlock] | None) -> list[Message]:
    if not system:
        return []
    if isinstance(system, str):
        return [SystemMessage(content=system)]
    parts: list[Part] = [
        TextPart(b.text, b.cache_control) for b in system if not b.text.startswith(BILLING_BLOCK)
    ]
    return [SystemMessage(content=parts)] if parts else []


def turn_messages(turn: Turn, where: str, *, final: bool) -> list[Message]:
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
        raise error(
            where,
            "all messages must have non-empty content "
            "except for the optional final assistant message",
        )
    allowed = ALLOWED_BLOCKS[turn.role]
    for index, block in enumerate(content):
        kind = disallowed_kind(block, allowed)
        if kind is not None:
            raise error(
                f"{where}.content.{index}.type",
                f"{A_ROLE[turn.role]} message cannot hold {kind!r} blocks",
            )
    if turn.role == "user":
        return _user_turn(content, where)
    if turn.role == "system":
        texts: list[Part] = [
            TextPart(b.text, b.cache_control) for b in content if isinstance(b, TextBlock)
        ]
        return [SystemMessage(content=texts)]
    return _assistant_turn(content)


def _user_turn(blocks: list[Block], where: str) -> list[Message]:
    """Tool results first, as tool messages; then the rest of the turn as one user message.

    Tool messages hold text only, so the images and documents of a tool result move into
    that user message."""
    results: list[Message] = []
    parts: list[Part] = []
    for index, block in enumerate(blocks):
        at = f"{where}.content.{index}"
        if isinstance(block, ToolResultBlock):
            text, media = _tool_result(block, at)
            results.append(ToolMessage(content=text, tool_call_id=block.tool_use_id))
            parts += media
        elif isinstance(block, TextBlock | ImageBlock | DocumentBlock | SearchResultBlock):
            parts += _parts(block, at)
        # container uploads are files for Anthropic's code execution: nothing to translate
    if parts:
        results.append(UserMessage(content=parts))
    return results


def _tool_result(block: ToolResultBlock, where: str) -> tuple[str | list[Part], list[Part]]:
    content = block.content
    if content is None or isinstance(content, str):
        return content or "", []
    return text_and_media(
        piece
        for index, part in enumerate(content)
        # a tool reference (a tool-search result) names a tool, carries nothing to read
        if not isinstance(part, ToolReference)
        for piece in _parts(part, f"{where}.content.{index}")
    )


def _parts(
    block: TextBlock | ImageBlock | DocumentBlock | SearchResultBlock, where: str
) -> list[Part]:
    if isinstance(block, TextBlock):
        return [TextPart(block.text, block.cache_control)]
    if isinstance(block, ImageBlock):
        return [_image(block, where)]
    if isinstance(block, SearchResultBlock):
        return [TextPart(part.text, part.cache_control) for part in block.content]
    return _document(block, where)


def _image(block: ImageBlock, where: str) -> Part:
    source = block.source
    if isinstance(source, ImageBase64):
        return ImagePart(ImageUrl(f"data:{source.media_type};base64,{source.data}"))
    if isinstance(source, UrlSource):
        return ImagePart(ImageUrl(_web_url(source, where)))
    return FilePart(FileData(file_id=source.file_id))


def _document(block: DocumentBlock, where: str) -> list[Part]:
    """The inverse of anthropic_request._document_block: files as base64 data: URLs."""
    source, name = block.source, block.title
    if isinstance(source, PdfBase64):
        return [FilePart(FileData(name, f"data:application/pdf;base64,{source.data}"))]
    if isinstance(source, PlainTextSource):
        data = base64.b64encode(source.data.encode()).decode()
        return [FilePart(FileData(name, f"data:text/plain;base64,{data}"))]
    if isinstance(source, UrlSource):
        return [FilePart(FileData(name, _web_url(source, where)))]
    if isinstance(source, FileSource):
        return [FilePart(FileData(name, file_id=source.file_id))]
    # A document given as content blocks is that content.
    if isinstance(source.content, str):
        return [TextPart(source.content, block.cache_control)]
    where = f"{where}.source.content"
    return [_parts(part, f"{where}.{index}")[0] for index, part in enumerate(source.content)]


def _assistant_turn(blocks: list[Block]) -> list[Message]:
    text: list[Part] = []
    calls: list[ToolCall] = []
    thinking: list[str] = []
    for block in blocks:
        if isinstance(block, TextBlock):
            text.append(TextPart(block.text, block.cache_control))
        elif isinstance(block, ToolUseBlock):
            arguments = msgspec.json.encode(block.input).decode()
            calls.append(ToolCall(block.id, FunctionCall(block.name, arguments)))
        elif isinstance(block, ThinkingBlock):
            thinking.append(block.thinking)
        # redacted thinking and server-tool blocks mean something to Anthropic only
    if not text and not calls:
        return []  # nothing but thinking or server-tool history: nothing to say again
    reasoning = "".join(thinking) or None
    return [AssistantMessage(content=text or None, tool_calls=calls or None, reasoning=reasoning)]


def _web_url(source: UrlSource, where: str) -> str:
    if not source.url.startswith(("https://", "http://")):
        raise error(f"{where}.source.url", "must be an http or https URL")
    return source.url
