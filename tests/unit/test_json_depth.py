"""JSON nesting is capped on the request bytes, before any recursive parser sees them."""

from __future__ import annotations

import time

import msgspec
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelyard.errors import InvalidRequest
from modelyard.schema.chat import parse_chat_request
from modelyard.schema.json_depth import MAX_DEPTH, check_depth

HEAD = b'{"model":"m/x","messages":[{"role":"user","content":"hi"}],'


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize(
    ("field", "param"),
    [
        (b'"junk":' + nested(5000), "junk"),
        (b'"junk":' + b"[" * 5000, "junk"),  # never closed
        (b'"junk":' + b'{"a":' * 5000 + b"1" + b"}" * 5000, "junk.a.a.a"),
        (b'"junk":{"a":1,"b":[1,2,' + nested(5000) + b"]}", "junk.b"),
        (
            b'"tools":[{"type":"function","function":{"name":"g"}},'
            b'{"type":"function","function":{"name":"f","parameters":'
            b'{"type":"object","properties":' + nested(5000) + b"}}}]",
            "tools[1].function.parameters",
        ),
        (
            b'"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":'
            + b'{"a":' * 5000
            + b"1"
            + b"}" * 5000
            + b"}}",
            "response_format.json_schema.schema.a",
        ),
    ],
)
def test_deep_nesting_anywhere_is_a_400_naming_the_field(field: bytes, param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_chat_request(HEAD + field + b"}")
    assert caught.value.param == param
    assert str(MAX_DEPTH) in caught.value.message


def test_a_deep_body_of_no_field_names_none() -> None:
    with pytest.raises(InvalidRequest) as caught:
        check_depth(b"[" + nested(5000) + b"]")
    assert caught.value.param is None and caught.value.message.startswith("The request body")


def test_a_path_far_into_a_field_stops_at_the_field() -> None:
    body = b'{"junk":[' + b"[]," * 200_000 + nested(500) + b"]}"
    with pytest.raises(InvalidRequest) as caught:
        check_depth(body)
    assert caught.value.param == "junk"


def test_deep_tool_call_arguments_are_refused_by_name() -> None:
    body = (
        b'{"model":"m/x","messages":[{"role":"assistant","tool_calls":[{"id":"1",'
        b'"function":{"name":"f","arguments":"' + b"[" * 3000 + b'"}}]}]}'
    )
    with pytest.raises(InvalidRequest) as caught:
        parse_chat_request(body)
    assert caught.value.param == "messages[0].tool_calls[0].function.arguments"


def test_up_to_the_limit_parses() -> None:
    # The body's own object is level 1.
    request = parse_chat_request(HEAD + b'"junk":' + nested(MAX_DEPTH - 1) + b"}")
    assert request.model == "m/x"
    with pytest.raises(InvalidRequest):
        parse_chat_request(HEAD + b'"junk":' + nested(MAX_DEPTH) + b"}")


@pytest.mark.parametrize(
    "text",
    [
        b'"' + b"[" * 5000 + b'"',  # brackets in a string do not nest
        b'"\\"' + b"[" * 5000 + b'"',  # an escaped quote does not end the string
        b'"\\\\\\"' + b"{" * 5000 + b'"',  # nor does one after an escaped backslash
    ],
)
def test_brackets_inside_strings_do_not_count(text: bytes) -> None:
    check_depth(b'{"a":' + text + b"}")
    assert isinstance(msgspec.json.decode(b'{"a":' + text + b"}"), dict)


def test_a_string_ended_after_an_escaped_backslash_is_left_behind() -> None:
    with pytest.raises(InvalidRequest):
        check_depth(b'{"a":"\\\\",' + b'"b":' + nested(500) + b"}")


def test_the_check_is_linear_on_the_worst_shapes() -> None:
    # ~18 MB, under the default body cap: every byte a bracket, or a tiny string.
    for body in (b"[" + b"[]," * 6_000_000 + b"[]]", b"[" + b'"a",' * 4_500_000 + b'""]'):
        started = time.process_time()
        check_depth(body)
        assert time.process_time() - started < 5  # about 0.15 s when idle


def depth_of(value: object) -> int:
    """Nesting of a decoded JSON value, counted without recursion (as the check must)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, depth)
            stack.extend(
                (child, depth + 1) for child in (node.values() if isinstance(node, dict) else node)
            )
    return deepest


tricky_text = st.text(alphabet='[]{}"\\,:ab\n', max_size=8)
json_values = st.recursive(
    st.none() | st.integers(min_value=-(2**63), max_value=2**63 - 1) | tricky_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(tricky_text, inner, max_size=3),
    max_leaves=40,
)


@settings(max_examples=500, deadline=None)
@given(json_values, st.integers(min_value=1, max_value=12))
def test_the_count_agrees_with_the_decoded_depth(value: object, limit: int) -> None:
    body = orjson.dumps({"v": value})
    deep = depth_of({"v": value}) > limit
    try:
        check_depth(body, limit=limit)
    except InvalidRequest:
        assert deep
    else:
        assert not deep
