"""X-Title / HTTP-Referer as the ledger keeps them: short, printable, one line."""

from __future__ import annotations

from modelyard.ledger.attribution import MAX_REFERER_CHARS, MAX_TITLE_CHARS, clean_attribution


def test_long_values_are_cut_to_their_caps() -> None:
    referer, title = clean_attribution("https://a.example/" + "r" * 10**6, "T" * 10**6)
    assert title == "T" * MAX_TITLE_CHARS
    assert referer is not None and len(referer) == MAX_REFERER_CHARS


def test_control_characters_go_and_whitespace_becomes_spaces() -> None:
    _, title = clean_attribution(None, " My\tapp\r\n\x1b[2J\x00\u202e\u200b v2 ")
    assert title == "My app  [2J v2"


def test_nothing_left_is_none() -> None:
    assert clean_attribution("", "\x00\x01 \t") == (None, None)
    assert clean_attribution(None, None) == (None, None)


def test_letters_of_any_script_stay() -> None:
    assert clean_attribution(None, "Ünïcødé 漢字 🚀")[1] == "Ünïcødé 漢字 🚀"
