"""Whatever a client sends, parsing either succeeds or raises InvalidRequest: never a crash."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelyard.errors import InvalidRequest
from modelyard.schema.chat import ChatRequest, parse_chat_request

FIELDS = list(ChatRequest.__struct_fields__)
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "role",
                    "content",
                    "type",
                    "text",
                    "name",
                    "function",
                    "image_url",
                    "url",
                    "parameters",
                    "json_schema",
                ]
            )
            | st.text(),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)
messages = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["system", "user", "assistant", "tool", "developer", "x"])},
        optional={"content": values, "tool_call_id": st.text(), "tool_calls": values},
    ),
    max_size=3,
)


def parse_or_invalid(raw: bytes) -> None:
    try:
        parse_chat_request(raw)
    except InvalidRequest as error:
        assert error.status == 400 and error.message


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(FIELDS), values, max_size=6), messages)
def test_random_requests_parse_or_are_invalid(fields: dict[str, Any], msgs: list[Any]) -> None:
    parse_or_invalid(json.dumps({"model": "m/x", "messages": msgs, **fields}).encode())


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_parse_or_are_invalid(raw: bytes) -> None:
    parse_or_invalid(raw)


# Where untyped JSON may go, as (before, after) the value.
UNTYPED = [
    ('"unknown_field": ', ""),
    (
        '"tools": [{"type": "function", "function": {"name": "f", "parameters": '
        '{"type": "object", "properties": ',
        "}}}]",
    ),
    (
        '"response_format": {"type": "json_schema", "json_schema": {"name": "x", '
        '"schema": {"type": "object", "properties": ',
        "}}}",
    ),
]
# Units that open JSON (each a valid prefix, brackets hidden in strings and escapes among
# them), repeated up to thousands of times, then random closers and noise: deep, shallow,
# unbalanced or broken JSON; never a RecursionError.
opening = st.lists(
    st.sampled_from(["[", '{"k":', "[1,", '["]",', '{"a":"\\\\",', '{"k":"\\"[{",']),
    min_size=1,
    max_size=4,
).map("".join)
tail = st.lists(st.sampled_from(["]", "}", '"', "1", ",", "]}"]), max_size=6).map("".join)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(UNTYPED) | st.sampled_from(FIELDS).map(lambda f: (f'"{f}": ', "")),
    opening,
    st.integers(min_value=1, max_value=3000),
    tail,
)
def test_deep_or_broken_nesting_parses_or_is_invalid(
    where: tuple[str, str], unit: str, repeat: int, end: str
) -> None:
    head = '{"model": "m/x", "messages": [{"role": "user", "content": "hi"}], '
    before, after = where
    parse_or_invalid((head + before + unit * repeat + end + after + "}").encode())
