"""Responses items as chat messages, for a request's input and a stored response's items.

A `message` item becomes a message by its role, `function_call_output` items tool messages,
and an assistant's turn (its messages, `function_call` and `reasoning` items up to the next
other item) one assistant message, as one chat completion would have said it: chat wants a
turn's calls straight before their outputs, so text after a call joins the call's message,
and reasoning is that message's `reasoning`. Tool messages hold text only, so the images
and files of a run of outputs follow it in one user message. Hosted tools' calls are left
out; items the gateway cannot translate are a 400 naming the item.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modelyard.schema.chat import (
    AssistantMessage,
    DeveloperMessage,
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
from modelyard.schema.json_depth import check_depth
from modelyard.schema.responses_errors import convert, error, unsupported
from modelyard.schema.responses_tools import chat_name
from modelyard.schema.responses_wire import (
    ALLOWED_PARTS,
    HOSTED_CALLS,
    ITEM,
    ITEM_TYPES,
    ContentPart,
    FunctionCallItem,
    FunctionCallOutputItem,
    InputFile,
    InputImage,
    InputText,
    Item,
    MessageItem,
    OutputText,
    ReasoningItem,
    Refusal,
)


def items_to_messages(items: list[dict[str, Any]], where: str = "input") -> list[Message]:
    """Input or output items as chat messages; `where` names the list in errors."""
    builder = _Messages()
    for index, raw in enumerate(items):
        at = f"{where}[{index}]"
        item = _item(raw, at)
        if item is not None:
            builder.add(item, at)
    return builder.done()


def input_items(value: str | list[Any] | None) -> list[dict[str, Any]]:
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
        raise error(where, f"Invalid type for '{where}': expected an object.")
    kind = raw.get("type")
    if kind is None:
        if "role" in raw:
            return {**raw, "type": "message"}
        kind = "item_reference" if "id" in raw else None
    if not isinstance(kind, str | None):
        raise error(f"{where}.type", f"Invalid type for '{where}.type': expected a string.")
    if kind == "item_reference":
        raise unsupported(where, "item references are", "send the item itself")
    if kind not in ITEM_TYPES and kind not in HOSTED_CALLS:
        shown = f"{kind!r} items are" if isinstance(kind, str) else "items without a 'type' are"
        raise unsupported(f"{where}.type", shown)
    return raw


def _item(raw: Any, where: str) -> Item | None:
    """The item, or None for a hosted tool's call (left out)."""
    typed = _typed(raw, where)
    if typed["type"] in HOSTED_CALLS:
        return None
    item: Item = convert(typed, ITEM, where)
    return item


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

    def add(self, item: Item, where: str) -> None:
        if isinstance(item, FunctionCallItem):
            check_depth(item.arguments.encode(), param=f"{where}.arguments")
            name = item.name
            if item.namespace is not None:
                name = chat_name(item.namespace, name)
            if self._turn is None:
                self._flush()
                self._turn = _Turn(None, None)
            self._think(self._turn)
            self._turn.calls.append(ToolCall(item.call_id, FunctionCall(name, item.arguments)))
            return
        if isinstance(item, FunctionCallOutputItem):
            text, media = _output(item.output, f"{where}.output")
            self._flush_turn()
            self.messages.append(ToolMessage(content=text, tool_call_id=item.call_id))
            self._media += media
            return
        turn = self._turn
        if isinstance(item, ReasoningItem):
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


def _message(item: MessageItem, where: str) -> Message:
    content = _content(item, where)
    if not content:
        raise error(f"{where}.content", f"Invalid '{where}.content': empty content.")
    if item.role == "user":
        return UserMessage(content=content)
    if item.role == "developer":
        return DeveloperMessage(content=content)
    return SystemMessage(content=content)


def _content(item: MessageItem, where: str) -> str | list[Part]:
    if isinstance(item.content, str):
        return item.content
    allowed = ALLOWED_PARTS[item.role]
    parts: list[Part] = []
    for index, part in enumerate(item.content):
        at = f"{where}.content[{index}]"
        kind = disallowed_kind(part, allowed)
        if kind is not None:
            raise error(
                f"{at}.type",
                f"Invalid value for '{at}.type': {A_ROLE[item.role]} message cannot hold "
                f"{kind!r} parts.",
            )
        parts.append(_part(part, at))
    return parts


def _part(part: ContentPart, where: str) -> Part:
    if isinstance(part, InputText | OutputText):
        return TextPart(part.text)
    if isinstance(part, Refusal):
        return TextPart(part.refusal)
    if isinstance(part, InputImage):
        if part.file_id is not None:
            raise unsupported(f"{where}.file_id", "files by id are", "send an image_url")
        if part.image_url is None:
            raise error(f"{where}.image_url", f"Missing required parameter: '{where}.image_url'.")
        # "original" (no downscaling) is the most detail chat's `detail` can ask for.
        detail = "high" if part.detail == "original" else part.detail
        return ImagePart(ImageUrl(part.image_url, detail))
    if part.file_id is not None:
        raise unsupported(f"{where}.file_id", "files by id are", "send file_data or file_url")
    data = part.file_data or part.file_url
    if data is None:
        raise error(
            f"{where}.file_data",
            f"Missing required parameter: '{where}.file_data' (or '{where}.file_url').",
        )
    return FilePart(FileData(part.filename, data))


def _output(
    output: str | list[InputText | InputImage | InputFile], where: str
) -> tuple[str | list[Part], list[Part]]:
    """A function call's output as a tool message's text, and its images and files."""
    if isinstance(output, str):
        return output, []
    return text_and_media(_part(part, f"{where}[{index}]") for index, part in enumerate(output))
