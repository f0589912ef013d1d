"""A Messages request's tools, tool_choice and thinking in chat's terms: custom tools as
functions, `disable_parallel_tool_use` as `parallel_tool_calls`, thinking as `reasoning`.
Anthropic's server tools are named only, for a choice that only they could meet."""

from __future__ import annotations

from typing import Any

from modelyard.schema.chat import (
    FunctionDef,
    NamedFunction,
    NamedToolChoice,
    Reasoning,
    Tool,
    ToolChoice,
)
from modelyard.schema.messages_errors import convert, error
from modelyard.schema.messages_wire import (
    AnyChoice,
    CustomTool,
    NamedChoice,
    NoToolChoice,
    ServerTool,
    ThinkingAdaptive,
    ThinkingBetweenTools,
    ThinkingConfig,
    ThinkingEnabled,
    ToolChoiceConfig,
)


def chat_tools(raw: list[dict[str, Any]] | None) -> tuple[list[Tool], set[str]]:
    """The custom tools as functions, and the names of the server tools (not translated)."""
    tools: list[Tool] = []
    server: set[str] = set()
    names: set[str] = set()
    for index, entry in enumerate(raw or ()):
        where = f"tools.{index}"
        kind = entry.get("type")
        if kind not in (None, "custom"):
            server.add(convert(entry, ServerTool, where).name)
            continue
        tool = convert(entry, CustomTool, where)
        if tool.name in names:
            raise error(f"{where}.name", f"tool names must be unique, {tool.name!r} is repeated")
        names.add(tool.name)
        if tool.input_schema.get("type") != "object":
            raise error(f"{where}.input_schema.type", "Input should be 'object'")
        function = FunctionDef(tool.name, tool.description, tool.input_schema, tool.strict)
        tools.append(Tool(function, cache_control=tool.cache_control))
    return tools, server


def chat_tool_choice(
    choice: ToolChoiceConfig | None, tools: list[Tool], server: set[str]
) -> tuple[ToolChoice | None, bool | None]:
    """`tool_choice` and `parallel_tool_calls`; a choice that only server tools could meet
    is left to an Anthropic upstream (the native body keeps it)."""
    if choice is None:
        return None, None
    if isinstance(choice, NoToolChoice):
        return "none", None
    parallel = False if choice.disable_parallel_tool_use and tools else None
    if isinstance(choice, NamedChoice):
        if any(tool.function.name == choice.name for tool in tools):
            return NamedToolChoice(NamedFunction(choice.name)), parallel
        if choice.name in server:
            return None, None
        raise error("tool_choice.name", f"there is no tool named {choice.name!r} in 'tools'")
    if not tools:
        if isinstance(choice, AnyChoice) and not server:
            raise error("tool_choice", "'any' needs 'tools' to choose from")
        return None, None
    return ("required" if isinstance(choice, AnyChoice) else "auto"), parallel


def chat_reasoning(thinking: ThinkingConfig | None) -> Reasoning | None:
    """Thinking as OpenRouter's `reasoning`, which every provider kind reads: a budget, or
    the model's own choice of how much. "disabled" is Anthropic's default: nothing to ask."""
    if isinstance(thinking, ThinkingEnabled):
        return Reasoning(max_tokens=thinking.budget_tokens)
    if isinstance(thinking, ThinkingAdaptive | ThinkingBetweenTools):
        return Reasoning(enabled=True)
    return None
