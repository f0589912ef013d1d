from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from modelyard.providers.local.stops import StopMatcher


def run(stops: list[str], pieces: list[str]) -> tuple[str, bool]:
    matcher = StopMatcher(stops)
    out = []
    for piece in pieces:
        out.append(matcher.feed(piece))
        if matcher.stopped:
            return "".join(out), True
    return "".join(out) + matcher.flush(), False


def test_stop_split_across_pieces_is_cut_before_it() -> None:
    assert run(["END"], ["hello E", "N", "D more"]) == ("hello ", True)


def test_partial_stop_prefix_is_released_when_it_does_not_complete() -> None:
    assert run(["END"], ["hello EN", "X"]) == ("hello ENX", False)


def test_earliest_of_several_stops_wins() -> None:
    assert run(["b", "a"], ["xxab"]) == ("xx", True)


def test_no_stops_passes_text_through() -> None:
    assert run([], ["a", "b"]) == ("ab", False)


@given(
    text=st.text(alphabet="abcx", max_size=40),
    stop=st.text(alphabet="abc", min_size=1, max_size=4),
    cuts=st.lists(st.integers(min_value=0, max_value=40), max_size=6),
)
def test_any_split_gives_the_same_answer_as_whole_text(
    text: str, stop: str, cuts: list[int]
) -> None:
    bounds = sorted({0, len(text), *(c for c in cuts if c <= len(text))})
    pieces = [text[a:b] for a, b in itertools.pairwise(bounds)]
    at = text.find(stop)
    expected = (text[:at], True) if at >= 0 else (text, False)
    assert run([stop], pieces) == expected
