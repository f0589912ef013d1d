"""A Responses request's tools and tool_choice in chat's terms. Function tools are chat's
tools; those of a `namespace` too, named `<namespace>__<name>` (chat has no namespaces).
Hosted tools (web search, file search, MCP, ...) and custom tools are left out, and a
choice of one is left to the model."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from modelyard.schema.chat import FunctionDef, NamedFunction, NamedToolChoice, Tool, ToolChoice
from modelyard.schema.responses_errors import convert, error
from modelyard.schema.responses_wire import AllowedTools, FunctionChoice, FunctionTool, Namespace

NAMESPACE_SEPARATOR = "__"  # `<namespace>__<name>`, the chat name of a namespace's function
MAX_FUNCTION_NAME = 64  # what OpenAI's chat API takes


def chat_name(namespace: str, name: str) -> str:
    """The chat name of a namespace's function."""
    return f"{namespace}{NAMESPACE_SEPARATOR}{name}"


@dataclass(slots=True)
class FunctionTools:
    """The function tools offered, and what the translation needs to know of the rest."""

    tools: list[Tool] = field(default_factory=list)
    namespaced: dict[str, tuple[str, str]] = field(default_factory=dict)
    hosted: bool = False  # some were left out

    def add(self, entry: dict[str, Any], where: str, namespace: str | None = None) -> None:
        tool = convert(entry, FunctionTool, where)
        name = tool.name
        if namespace is not None:
            name = chat_name(namespace, tool.name)
            if len(name) > MAX_FUNCTION_NAME:
                raise error(
                    f"{where}.name",
                    f"'{where}.name' is too long: with its namespace, {name!r} is more than "
                    f"{MAX_FUNCTION_NAME} characters.",
                )
            self.namespaced[name] = (namespace, tool.name)
        if any(known.function.name == name for known in self.tools):
            raise error(f"{where}.name", f"Duplicate tool name {name!r} in '{where}.name'.")
        schema = tool.parameters
        if schema is not None and schema.get("type", "object") != "object":
            raise error(
                f"{where}.parameters",
                f"'{where}.parameters' must be a JSON Schema of type 'object'.",
            )
        self.tools.append(Tool(FunctionDef(name, tool.description, schema, tool.strict)))


def function_tools(raw: list[dict[str, Any]] | None) -> FunctionTools:
    found = FunctionTools()
    for index, entry in enumerate(raw or ()):
        where = f"tools[{index}]"
        kind = _tool_type(entry, where)
        if kind == "function":
            found.add(entry, where)
        elif kind == "namespace":
            namespace = convert(entry, Namespace, where)
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
        raise error(f"{where}.type", f"Missing required parameter: '{where}.type'.")
    if not isinstance(kind, str):
        raise error(f"{where}.type", f"Invalid type for '{where}.type': expected a string.")
    return kind


def chat_tool_choice(
    raw: Literal["none", "auto", "required"] | dict[str, Any] | None, found: FunctionTools
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
        raise error("tool_choice", "'tool_choice' is only allowed when 'tools' are specified.")
    names = {tool.function.name for tool in tools}
    if choice == "required":
        return tools, "required"
    if isinstance(choice, FunctionChoice):
        if choice.name not in names:
            raise error(
                "tool_choice.name",
                f"'tool_choice' names the function {choice.name!r}, which is not among 'tools'.",
            )
        return tools, NamedToolChoice(NamedFunction(choice.name))
    allowed = {tool.name for tool in choice.tools if tool.type == "function"}
    for index, tool in enumerate(choice.tools):
        if tool.type == "function" and tool.name not in names:
            param = f"tool_choice.tools[{index}].name"
            raise error(param, f"'{param}' names {tool.name!r}, which is not among 'tools'.")
    return [tool for tool in tools if tool.function.name in allowed], choice.mode


def _choice(
    raw: Literal["required"] | dict[str, Any],
) -> Literal["required"] | FunctionChoice | AllowedTools | None:
    """The choice that concerns functions, or None for a hosted tool's."""
    if isinstance(raw, str):
        return raw
    kind = raw.get("type")
    if kind == "function":
        return convert(raw, FunctionChoice, "tool_choice")
    if kind == "allowed_tools":
        return convert(raw, AllowedTools, "tool_choice")
    if not isinstance(kind, str):
        raise error("tool_choice.type", "Missing required parameter: 'tool_choice.type'.")
    return None
