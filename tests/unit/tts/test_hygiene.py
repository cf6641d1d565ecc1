"""Text hygiene: each rule removes its kind of thing whole, counts it, and touches nothing else."""

from __future__ import annotations

import time
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from saladpipe.tts.hygiene import clean_text

# The England flag: black flag, tag letters g b e n g, cancel tag.
ENGLAND = "\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f"


@pytest.mark.parametrize(
    ("text", "clean", "removed"),
    [
        ("\x1b[31mred\x1b[0m alert", "red alert", {"escapes": 2}),
        ("\x1b[1;38;5;208mbold\x1b[K", "bold", {"escapes": 2}),
        ("\x1b]0;window title\x07text", "text", {"escapes": 1}),
        ("\x1b]8;;https://x.org\x1b\\link\x1b]8;;\x1b\\", "link", {"escapes": 2}),
        ("\x1b(Bplain\x1bc", "plain", {"escapes": 2}),
        ("\x9b31mC1 form", "C1 form", {"escapes": 1}),
        ("nul\x00 bell\x07 del\x7f c1\x85 end\x1b", "nul bell del c1 end", {"controls": 5}),
        ("tab\tnew\nline\r\n", "tab\tnew\nline\r\n", {}),
        ("zero\u200bwidth\ufeff bom soft\xadhyphen", "zerowidth bom softhyphen", {"format": 3}),
        ("\u202eevil\u202c \u200fRLM \u2066isolate\u2069", "evil RLM isolate", {"format": 5}),
        ("hidden\U000e0041\U000e0042 tags", "hidden tags", {"format": 2}),
        ("lost \ufffd\ufffd bytes", "lost  bytes", {"replacement": 2}),
        ("non\ufdd0char\uffff\U0001fffe", "nonchar", {"noncharacters": 3}),
        ("lone \ud800surrogate", "lone surrogate", {"noncharacters": 1}),
        (
            '<speak>Hi <break time="1s"/> world <say-as interpret-as="digits">12</say-as></speak>',
            " Hi world 12 ",
            {"markup": 5},
        ),
        ("<p>One</p><p>Two</p>", " One Two ", {"markup": 4}),
        ("a <b>bold</b> and <i>it</i>alic", "a bold and italic", {"markup": 4}),
        ('<?xml version="1.0"?><!DOCTYPE speak><speak>Hi</speak>', " Hi ", {"markup": 4}),
        ("before<!-- a comment -->after", "beforeafter", {"markup": 1}),
        ("<![CDATA[kept, as 3 < 4 is]]>", "kept, as 3 < 4 is", {"markup": 1}),
        ("<script>alert('x')</script>Safe<style>p {}</style>", " Safe ", {"markup": 2}),
        ('<amazon:effect name="whispered">psst</amazon:effect>', " psst ", {"markup": 2}),
        ("<note><to>Tove</to></note>", " Tove ", {"markup": 4}),
        ("AT&amp;T &quot;quoted&quot; caf&#233; &#x41;", 'AT&T "quoted" café A', {"markup": 5}),
        ("escaped &lt;b&gt; stays text", "escaped <b> stays text", {"markup": 2}),
        ("zero&#8203;width entity", "zerowidth entity", {"markup": 1, "format": 1}),
        ("<sp\u200beak>hidden tag</speak>", " hidden tag ", {"format": 1, "markup": 2}),
    ],
)
def test_each_kind_is_removed_whole_and_counted(
    text: str, clean: str, removed: dict[str, int]
) -> None:
    cleaned = clean_text(text)
    assert (cleaned.text, cleaned.removed) == (clean, removed)


@pytest.mark.parametrize(
    "text",
    [
        "x < 3 and y > 2",
        "a<b, b>c, a <= b >= c, 1<2",
        "List<String> and vector<int> and Map<K, V>",
        "if (a<b && c>d) return;",
        "<3 and <- and -> and << and >> and <>",
        "R&D, Q&A, AT&T, fish & chips, &c., & so on; done",
        "Persian: می\u200cخواهم, Hindi: क्\u200dष",
        "family: 👨\u200d👩\u200d👧, cook: 👩🏽\u200d🍳, heart on fire: ❤️\u200d🔥",
        f"flag: {ENGLAND}",
        "private use \ue000\U000f0000 kept",
        "Z\u0351\u0364a\u0308\u0301l\u0317g\u0353o\u0300\u0489 and cafe\u0301",
        "العربية من اليمين إلى اليسار, עברית גם",
    ],
)
def test_text_that_only_looks_suspicious_is_unchanged(text: str) -> None:
    assert clean_text(text).text == text and not clean_text(text).removed


def test_a_joiner_away_from_letters_is_removed() -> None:
    assert clean_text("\u200dstart end\u200d, \u200c\u200c").text == "start end, "


_PLAIN = st.characters(codec="utf-8", exclude_categories=("Cc", "Cf", "Cs", "Co", "Cn"))


@settings(max_examples=300, deadline=None)
@given(st.text(_PLAIN.filter(lambda c: c not in "<&\ufffd")))
def test_printable_text_without_markup_passes_unchanged(text: str) -> None:
    cleaned = clean_text(text)
    assert cleaned.text == text and not cleaned.removed


@settings(max_examples=300, deadline=None)
@given(st.text(_PLAIN.filter(lambda c: c not in ">;\ufffd")))
def test_angle_brackets_and_ampersands_alone_are_text(text: str) -> None:
    """No tag without '>' and no entity without ';': such text is never changed."""
    assert clean_text(text).text == text


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_no_control_format_or_broken_character_survives(text: str) -> None:
    out = clean_text(text).text
    for i, ch in enumerate(out):
        category = unicodedata.category(ch)
        assert category not in ("Cc", "Cs") or ch in "\t\n\r", repr(out)
        assert ch != "\ufffd" and not (0xFDD0 <= ord(ch) <= 0xFDEF) and ord(ch) & 0xFFFE != 0xFFFE
        if category == "Cf":  # only a joiner between joinable characters, or a flag's tags
            assert ch in "\u200c\u200d" or 0xE0020 <= ord(ch) <= 0xE007F, repr(out)
            assert 0 < i < len(out) - 1 or ch not in "\u200c\u200d", repr(out)


@pytest.mark.parametrize(
    "text",
    [
        "<" * 100_000,
        "<a b" * 25_000,
        '<a b="' * 16_000,
        "<a" + " b=c" * 25_000,
        "-->" + "<!--" * 25_000,
        "]]>" + "<![CDATA[" * 10_000,
        "</script>" + "<script>" * 12_000,
        "\x1b]" * 50_000,
        "&#" * 50_000,
        "<!x" * 33_000,
        "\u200d" * 100_000,
        "<b>" * 33_000,
    ],
)
def test_hostile_100k_rows_clean_in_linear_time(text: str) -> None:
    start = time.perf_counter()
    clean_text(text)
    assert time.perf_counter() - start < 2.0
