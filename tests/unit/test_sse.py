"""SseParser: what real upstreams send, however the network cuts it into reads."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from modelyard.providers.sse import SseEvent, SseParser


def feed_all(*chunks: bytes) -> list[SseEvent]:
    parser = SseParser()
    events: list[SseEvent] = []
    for chunk in chunks:
        events.extend(parser.feed(chunk))
    return events


def test_data_lines_become_message_events() -> None:
    assert feed_all(b'data: {"a": 1}\n\ndata: [DONE]\n\n') == [
        SseEvent("message", '{"a": 1}'),
        SseEvent("message", "[DONE]"),
    ]


def test_comments_are_skipped_wherever_they_are() -> None:
    stream = b": keep-alive\n\n: OPENROUTER PROCESSING\ndata: x\n: inside\ndata: y\n\n:\n\n"
    assert feed_all(stream) == [SseEvent("message", "x\ny")]


def test_crlf_and_bare_cr_line_ends() -> None:
    assert feed_all(b"data: a\r\n\r\ndata: b\r\rdata: c\n\n") == [
        SseEvent("message", "a"),
        SseEvent("message", "b"),
        SseEvent("message", "c"),
    ]


def test_crlf_split_between_reads_is_one_line_end() -> None:
    # Were "\r" | "\n" read as two line ends, "a" would be dispatched alone.
    assert feed_all(b"data: a\r", b"\ndata: b\r\n\r\n") == [SseEvent("message", "a\nb")]


def test_multi_line_data_is_joined_with_newlines() -> None:
    assert feed_all(b"data: first\ndata:second\ndata\ndata:  indented\n\n") == [
        SseEvent("message", "first\nsecond\n\n indented")
    ]


def test_event_names_apply_to_one_event_only() -> None:
    stream = (
        b"event: message_start\ndata: {}\n\n"
        b"event: ping\n\n"  # no data: not dispatched, and the name does not leak
        b"data: plain\n\n"
        b"event:content_block_delta\ndata: {}\n\n"
    )
    assert feed_all(stream) == [
        SseEvent("message_start", "{}"),
        SseEvent("message", "plain"),
        SseEvent("content_block_delta", "{}"),
    ]


def test_unknown_fields_are_ignored_and_an_empty_data_field_is_an_event() -> None:
    assert feed_all(b"id: 7\nretry: 100\ndata:\n\n") == [SseEvent("message", "")]


def test_nothing_is_dispatched_before_the_blank_line() -> None:
    parser = SseParser()
    assert list(parser.feed(b"data: partial\n")) == []
    assert list(parser.feed(b"data: more")) == []
    assert list(parser.feed(b"\n\n")) == [SseEvent("message", "partial\nmore")]


def test_multibyte_characters_split_across_reads() -> None:
    raw = "data: héllo wörld ✓ 🦙\n\n".encode()
    for cut in range(1, len(raw)):
        assert feed_all(raw[:cut], raw[cut:]) == [SseEvent("message", "héllo wörld ✓ 🦙")]


@dataclass(frozen=True)
class Scripted:
    raw: bytes
    expected: list[SseEvent]


_line_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\r\n"),
    max_size=12,
)
_line_end = st.sampled_from(["\n", "\r\n", "\r"])


@st.composite
def sse_streams(draw: st.DrawFn) -> Scripted:
    """A stream of events with comments and mixed line ends, and the events it must give."""
    text, expected = "", []
    for _ in range(draw(st.integers(0, 5))):
        if draw(st.booleans()):
            text += ":" + draw(_line_text) + draw(_line_end)
        name = draw(st.none() | _line_text)
        if name is not None:
            text += "event: " + name + draw(_line_end)
        lines = draw(st.lists(_line_text, max_size=3))
        for line in lines:
            text += "data: " + line + draw(_line_end)
        # The blank line; after a bare "\r" a "\n" would merge with it into one "\r\n".
        text += draw(st.sampled_from(["\r\n", "\r"]) if text.endswith("\r") else _line_end)
        if lines:
            expected.append(SseEvent(name or "message", "\n".join(lines)))
    # A bare "\r" at the very end could still become "\r\n": end on "\n" so all is final.
    return Scripted((text + "\n").encode(), expected)


@given(sse_streams())
def test_any_stream_split_at_every_byte_position(stream: Scripted) -> None:
    assert feed_all(stream.raw) == stream.expected
    for cut in range(len(stream.raw) + 1):
        assert feed_all(stream.raw[:cut], stream.raw[cut:]) == stream.expected


@given(sse_streams(), st.data())
def test_any_stream_fed_in_random_pieces(stream: Scripted, data: st.DataObject) -> None:
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream.raw)), max_size=20)))
    bounds = [0, *cuts, len(stream.raw)]
    pieces = [stream.raw[a:b] for a, b in itertools.pairwise(bounds)]
    assert feed_all(*pieces) == stream.expected


def test_byte_at_a_time() -> None:
    raw = b"event: e\r\ndata: 1\r\n: c\r\ndata: 2\r\n\r\ndata: 3\n\n"
    assert feed_all(*(raw[i : i + 1] for i in range(len(raw)))) == [
        SseEvent("e", "1\n2"),
        SseEvent("message", "3"),
    ]
