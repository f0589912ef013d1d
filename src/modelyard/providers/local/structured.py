"""Structured output for the embedded model: bounded GBNF grammars plus a deterministic closer.

Grammar-constrained decoding alone does not make a small model finish its JSON: asked for
`{name, age, tags[]}` with max_tokens 80, Gemma 3 270M kept adding array items or string
characters until the limit cut the JSON open. So (1) every repetition in the grammar is bounded
(schemas get default maxItems/maxLength; free-form JSON gets bounded rules), which lets the model
reach the end, and (2) when the limit still cuts the output, `OutputConstraint.close` supplies
the deterministic suffix that makes it valid (see json_closer).

Grammar text comes from llama-cpp-python's `json_schema_to_gbnf`. Its output shape, which the
closer relies on: at most one optional space after `{`, `[`, `,`, `:`, each key and each value
(none after const/enum literals); required properties in declared order, then optional ones in
declared order, then additional properties.
"""

from __future__ import annotations

import copy
import json
import re
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import llama_cpp
from llama_cpp.llama_grammar import PRIMITIVE_RULES, SchemaConverter

from modelyard.providers.local.json_closer import (
    close_json,
    converter_branch,
    fixed_format,
    literal_text,
    resolve_pointer,
)

# A string longer than ~128 characters or a list longer than 8 items in a generated JSON answer is
# far more often a small model stuck in a loop than what the caller wanted; callers who need more
# say so with maxLength/maxItems. 128 characters are ~30-60 tokens, 8 items keep a typical list
# answer well inside a few hundred tokens.
DEFAULT_MAX_ITEMS = 8
DEFAULT_MAX_LENGTH = 128
# Free-form JSON (json_object mode, `{"type": "object"}`, additionalProperties): at most this many
# keys per object and this many levels of containers (the outermost free-form one included).
DEFAULT_MAX_PROPERTIES = 8
FREE_FORM_DEPTH = 4

_ANY_VALUE: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "maxLength": DEFAULT_MAX_LENGTH},
        {"type": "number"},
        {"type": "boolean"},
        {"type": "null"},
        {"type": "object"},
        {"type": "array"},
    ]
}
# JSON forbids raw control characters in strings; the converter's `char` rule lets them through.
_CHAR = r'[^"\\\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4})'
_NAMED_SCHEMAS = ("properties", "patternProperties", "dependentSchemas")
_DATA_KEYS = ("const", "enum", "default", "examples")
_RULE = re.compile(r"([A-Za-z0-9-]+) ::= ")
CALL_TAG = "<tool_call>\n"


@dataclass(frozen=True)
class OutputConstraint:
    grammar: str  # GBNF text whose start rule is named `root`
    schema: dict[str, Any] | None  # the bounded schema the output matches (None: any object)
    allow_text: bool = False  # tool_choice "auto": plain text (not starting with "{") is fine
    # With allow_text: the call alone, opened by CALL_TAG as the prompt asks (the model picks
    # the right tool more often after the tag it was shown), used once the first token chose
    # a call; see sampling.CALL_THRESHOLD.
    call_grammar: str | None = None

    def close(self, partial: str) -> str:
        """The suffix that makes a cut output valid ("" if it is complete or plain text)."""
        stripped = partial.lstrip()
        if self.call_grammar is not None and stripped.startswith("<"):
            if CALL_TAG.startswith(stripped):  # cut inside the tag
                return CALL_TAG[len(stripped) :] + close_json("", self.schema)
            return close_json(stripped[len(CALL_TAG) :], self.schema)
        if self.allow_text and not stripped.startswith("{"):
            return ""
        return close_json(partial, self.schema)


def json_object_constraint() -> OutputConstraint:
    """Any JSON object (response_format json_object)."""
    return OutputConstraint(_grammar({"type": "object"}), None)


def json_schema_constraint(schema: dict[str, Any]) -> OutputConstraint:
    """Output matching `schema` (response_format json_schema). ValueError if unsupported."""
    bounded = bound_schema(schema)
    return OutputConstraint(_grammar(bounded), bounded)


def tool_call_constraint(
    tools: Sequence[tuple[str, dict[str, Any] | None]],
    *,
    force: str | None = None,
    allow_text: bool = False,
) -> OutputConstraint:
    """`{"name": <tool>, "arguments": {...}}` for one of `tools` (name, parameters schema)."""
    names = [name for name, _ in tools]
    if not tools:
        raise ValueError("no tools to call")
    if len(set(names)) != len(names):
        raise ValueError("tool names must be unique")
    if force is not None:
        if force not in names:
            raise ValueError(f"tool_choice names an unknown function {force!r}")
        tools = [tool for tool in tools if tool[0] == force]
    calls: list[dict[str, Any]] = []
    defs: dict[str, Any] = {}
    for i, (name, params) in enumerate(tools):
        body, tool_defs = _hoist_refs({"type": "object"} if params is None else params, f"t{i}-")
        body.pop("$schema", None)
        defs.update(tool_defs)
        calls.append(
            {
                "type": "object",
                "properties": {"name": {"const": name}, "arguments": body},
                "required": ["name", "arguments"],
            }
        )
    schema = calls[0] if len(calls) == 1 else {"anyOf": calls}
    bounded = _bound_document({**schema, "$defs": defs} if defs else schema)
    if not allow_text:
        return OutputConstraint(_grammar(bounded), bounded)
    return OutputConstraint(
        _grammar(bounded, allow_text=True), bounded, True, call_grammar=_grammar(bounded, tag=True)
    )


def parse_tool_call(text: str) -> tuple[str, str] | None:
    """(name, arguments as compact JSON) if `text` is a tool call as the grammar writes it,
    bare or inside <tool_call></tool_call>."""
    text = text.strip()
    if text.startswith(CALL_TAG):
        text = text[len(CALL_TAG) :].removesuffix("</tool_call>")
    try:
        call = json.loads(text)
    except ValueError:
        return None
    if not isinstance(call, dict) or set(call) != {"name", "arguments"}:
        return None
    name, arguments = call["name"], call["arguments"]
    if not isinstance(name, str) or not isinstance(arguments, dict):
        return None
    return name, json.dumps(arguments, ensure_ascii=False, separators=(",", ":"))


# -- schemas ------------------------------------------------------------------------------------
def bound_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of `schema` with refs made local and default maxItems/maxLength added."""
    body, defs = _hoist_refs(schema, "")
    return _bound_document({**body, "$defs": defs} if defs else body)


def _bound_document(doc: dict[str, Any]) -> dict[str, Any]:
    defs = doc.get("$defs") or {}
    out = _bound({k: v for k, v in doc.items() if k not in ("$defs", "$schema")})
    if not isinstance(out, dict):
        raise ValueError("the schema must be a JSON object")
    for key in ("$schema", "$defs"):
        if key in doc:
            out[key] = {n: _bound(s) for n, s in defs.items()} if key == "$defs" else doc[key]
    return out


def _hoist_refs(schema: Any, prefix: str) -> tuple[Any, dict[str, Any]]:
    """Rewrite every `$ref` to `#/$defs/<unique rule-safe name>`, collecting those defs.

    The converter names a ref's rule after the pointer's last segment, so refs that share one
    (or names with characters a rule name cannot hold, or "#") would make a wrong grammar.
    """
    if not isinstance(schema, dict):
        raise ValueError("a JSON Schema must be a JSON object")
    names: dict[str, str] = {}
    defs: dict[str, Any] = {}

    def target(pointer: str) -> Any:
        try:
            return resolve_pointer(schema, pointer)
        except LookupError:
            raise ValueError(f"$ref '#{pointer}' points at nothing") from None

    def name_for(pointer: str) -> str:
        if pointer not in names:
            slug = re.sub(r"[^A-Za-z0-9]+", "-", pointer.rsplit("/", 1)[-1]).strip("-")
            names[pointer] = f"{prefix}{slug or 'root'}-d{len(names)}"
            defs[names[pointer]] = rewrite(target(pointer))
        return names[pointer]

    def rewrite(node: Any) -> Any:
        if isinstance(node, list):
            return [rewrite(x) for x in node]
        if not isinstance(node, dict):
            return node
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in ("$defs", "definitions", "$id", "$anchor", "$schema"):
                continue  # defs are reached through refs only; ids would re-base the refs
            if key == "$ref":
                if not isinstance(value, str) or not value.startswith("#"):
                    raise ValueError(f"unsupported $ref {value!r}: only local refs are supported")
                out[key] = "#/$defs/" + name_for(urllib.parse.unquote(value[1:]))
            elif key in _NAMED_SCHEMAS and isinstance(value, dict):
                out[key] = {name: rewrite(sub) for name, sub in value.items()}
            else:
                out[key] = value if key in _DATA_KEYS else rewrite(value)
        return out

    body = rewrite(schema)
    if "$schema" in schema:
        body["$schema"] = schema["$schema"]
    return body, defs


def _bound(s: Any) -> Any:
    """Add maxItems/maxLength wherever the converter would honour them and none is set.

    Only through the keywords the converter follows: a bound inside `not` or `if` would change
    what the schema means without changing the grammar.
    """
    if s is True:
        return {}
    if not isinstance(s, dict):
        return s
    if converter_branch(s) == "types":  # the converter drops the other keywords of a type list
        rest = {k: v for k, v in s.items() if k != "type"}
        return _bound({"anyOf": [{**rest, "type": t} for t in s["type"]]})
    out = dict(s)
    if isinstance(out.get("properties"), dict):
        out["properties"] = {name: _bound(sub) for name, sub in out["properties"].items()}
    for key in ("anyOf", "oneOf", "allOf", "prefixItems", "items", "additionalProperties"):
        value = out.get(key)
        if isinstance(value, list):
            out[key] = [_bound(sub) for sub in value]
        elif isinstance(value, dict) and not (key == "items" and not value):
            out[key] = _bound(value)
    if out.get("items") in (True, {}):  # "anything": the converter would crash on these
        del out["items"]
    sized = "minItems" in out or "maxItems" in out  # unsized: the free-form array rule bounds it
    if out.get("type") == "array" and sized and "items" not in out and "prefixItems" not in out:
        out["items"] = copy.deepcopy(_ANY_VALUE)
    branch = converter_branch(out)
    if branch == "array" and isinstance(out.get("items"), dict):
        out.setdefault("maxItems", max(DEFAULT_MAX_ITEMS, int(out.get("minItems", 0))))
    elif branch == "string" and "pattern" not in out and not fixed_format(out):
        out.setdefault("maxLength", max(DEFAULT_MAX_LENGTH, int(out.get("minLength", 0))))
    return out


# -- grammars -----------------------------------------------------------------------------------
def _grammar(schema: dict[str, Any], *, allow_text: bool = False, tag: bool = False) -> str:
    try:
        make: Any = _Converter  # the converter is untyped
        converter = make(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)
        converter.visit(converter.resolve_refs(json.loads(json.dumps(schema)), "stdin"), "")
        gbnf: str = converter.format_grammar()  # the steps of json_schema_to_gbnf
    except Exception as exc:  # the converter asserts, or trips on what it does not support
        raise ValueError(f"unsupported JSON Schema ({type(exc).__name__}: {exc})") from exc
    rules: dict[str, str] = {}
    name = ""
    for line in gbnf.split("\n"):
        if m := _RULE.match(line):
            name = m.group(1)
            rules[name] = line[m.end() :]
        elif name:  # a literal with a raw newline (from a pattern) spans lines
            rules[name] += "\n" + line
    _bound_free_form(rules)
    if allow_text:
        call, text = _fresh(rules, "tool-call"), _fresh(rules, "plain-text")
        rules[call] = rules.pop("root")
        rules[text] = r"[^{ \t\r\n] [^\x00]*"
        rules["root"] = f"{call} | {text}"
    elif tag:
        call = _fresh(rules, "tool-call")
        rules[call] = rules.pop("root")
        rules["root"] = f'"<tool_call>\\n" {call}'
    grammar = "\n".join(f"{name} ::= {body}" for name, body in rules.items())
    _check(grammar)
    return grammar


class _Converter(SchemaConverter):
    """llama.cpp's converter, with JSON literals (keys, const, enum) escaped properly for GBNF.

    The pinned version leaves backslashes alone, so `"a\\b"` became a GBNF literal matching the
    invalid JSON `"a\b"`, and `"say \"hi\""` a broken grammar. Non-ASCII is written raw (the
    model's natural tokens); the closer compares against the same text (literal_text).
    """

    def _format_literal(self, literal: str) -> str:  # only ever given json.dumps output
        text = literal_text(json.loads(literal))
        for raw, escaped in (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r")):
            text = text.replace(raw, escaped)
        return f'"{text}"'


def _bound_free_form(rules: dict[str, str]) -> None:
    """Replace the converter's unbounded rules (strings, free-form values, extra keys)."""
    more = f"{{0,{DEFAULT_MAX_PROPERTIES - 1}}}"
    if rules.get("char") == PRIMITIVE_RULES["char"].content:
        rules["char"] = _CHAR
    if rules.get("string") == PRIMITIVE_RULES["string"].content:
        rules["string"] = rf'"\"" char{{0,{DEFAULT_MAX_LENGTH}}} "\"" space'
    for name, body in rules.items():
        if m := re.fullmatch(r'(\S+) \( "," space \1 \)\*', body):
            rules[name] = f'{m.group(1)} ( "," space {m.group(1)} ){more}'
    if rules.get("value") != PRIMITIVE_RULES["value"].content:
        return
    # Free-form JSON nests at most FREE_FORM_DEPTH containers deep: level d holds level d+1.
    prefix = _fresh(rules, "free")
    level = ["", *(f"{prefix}-{d}-" for d in range(1, FREE_FORM_DEPTH + 1))]
    for d, here in enumerate(level):
        scalars = "string | number | boolean | null"
        if d == FREE_FORM_DEPTH:
            rules[f"{here}value"] = scalars
            break
        inner = f"{level[d + 1]}value"
        pair = f'string ":" space {inner}'
        rules[f"{here}value"] = f"{here}object | {here}array | {scalars}"
        rules[f"{here}object"] = f'"{{" space ( {pair} ( "," space {pair} ){more} )? "}}" space'
        rules[f"{here}array"] = f'"[" space ( {inner} ( "," space {inner} ){more} )? "]" space'


def _fresh(rules: dict[str, str], base: str) -> str:
    """A rule name (prefix) no existing rule starts with."""
    name = base
    while any(existing.startswith(name) for existing in rules):
        name += "x"
    return name


def _check(grammar: str) -> None:
    """Parse the grammar with llama.cpp itself (no model needed) so errors surface as a 400."""
    sampler = llama_cpp.llama_sampler_init_grammar(None, grammar.encode(), b"root")
    if not sampler:
        raise ValueError("the JSON Schema produced a grammar llama.cpp cannot parse")
    llama_cpp.llama_sampler_free(sampler)
