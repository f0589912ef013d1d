"""logit_bias keys are token ids, checked when the request is parsed."""

from __future__ import annotations

import orjson
import pytest

from modelyard.errors import InvalidRequest
from modelyard.schema.chat import MAX_LOGIT_BIAS, MAX_TOKEN_ID, parse_chat_request


def request(bias: object) -> bytes:
    return orjson.dumps(
        {"model": "m/x", "messages": [{"role": "user", "content": "hi"}], "logit_bias": bias}
    )


@pytest.mark.parametrize(
    "bias",
    [
        {"9" * 5000: 1},  # int() of it is a ValueError (more than 4300 digits)
        {str(MAX_TOKEN_ID + 1): 1},
        {"-1": 1},
        {"12a": 1},
        {"١٢": 1},  # Arabic-Indic digits are decimal to Python, not token ids
        {" 12": 1},
        {str(n): 1 for n in range(MAX_LOGIT_BIAS + 1)},
    ],
    ids=["5000 digits", "past int32", "negative", "not a number", "non-ascii", "space", "301"],
)
def test_bad_logit_bias_is_a_400_naming_it(bias: object) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_chat_request(request(bias))
    assert caught.value.param == "logit_bias"
    assert len(caught.value.message) < 200


@pytest.mark.parametrize("value", [-100.5, 101])
def test_bias_values_stay_within_100(value: float) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_chat_request(request({"1": value}))
    assert caught.value.param == "logit_bias"


def test_good_logit_bias_parses() -> None:
    bias = {str(n): -100 for n in range(MAX_LOGIT_BIAS - 1)} | {str(MAX_TOKEN_ID): 100}
    assert parse_chat_request(request(bias)).logit_bias == bias
