"""Numbers, abbreviations and symbols are spelled out the way a person reads them aloud."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from saladpipe.tts.normalize import base_language, normalize_text


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        (
            "It costs $1,234.56.",
            "It costs one thousand, two hundred and thirty-four dollars and fifty-six cents.",
        ),
        ("£5 or €1.01", "five pounds or one euro and one cent"),
        ("a $3 million deal", "a three million dollars deal"),
        ("the 12th of May 1999", "the twelfth of May nineteen ninety-nine"),
        ("21st and 102nd", "twenty-first and one hundred and second"),
        ("pi is 3.14", "pi is three point one four"),
        ("50% off", "fifty percent off"),
        (
            "3.5 kg and 1 km and 20°C",
            "three point five kilograms and one kilometer and twenty degrees Celsius",
        ),
        ("at 10:30 a.m. or 7:05 or 9:00", "at ten thirty A M or seven oh five or nine o'clock"),
        ("Dr. Smith vs. Mr. Jones, etc.", "Doctor Smith versus Mister Jones, et cetera"),
        ("fruit, e.g. apples, i.e. food", "fruit, for example apples, that is food"),
        ("No. 7 and #8", "number seven and number eight"),
        ("salt & pepper, 2 + 2 = 4", "salt and pepper, two plus two equals four"),
        ("3/4 cup and 2/7 of it", "three quarters cup and two over seven of it"),
        ("-4 degrees, 1990–1995", "minus four degrees, nineteen ninety to nineteen ninety-five"),
        ("and/or input/output", "and or input output"),
        ("10,000 people", "ten thousand people"),
        ("½ an hour", "one half an hour"),
        ("No numbers here.", "No numbers here."),
    ],
)
def test_english_is_spelled_out(text: str, spoken: str) -> None:
    assert normalize_text(text, "en_US") == spoken


def test_spelled_out_text_stays_as_it_is() -> None:
    once = normalize_text("On 3 May 2021, Dr. Lee paid $40 for 2.5 kg (about 5 lb).")
    assert once == normalize_text(once)
    assert not any(ch.isdigit() for ch in once)


def test_other_languages_get_their_numbers_and_unknown_ones_are_left_alone() -> None:
    assert normalize_text("Er hat 21 Äpfel.", "de_DE") == "Er hat einundzwanzig Äpfel."
    assert normalize_text("Il a 21 pommes.", "fr-fr") == "Il a vingt et un pommes."
    assert normalize_text("Ina 21 tufaha.", "zz") == "Ina 21 tufaha."


def test_locale_codes_reduce_to_the_language() -> None:
    assert [base_language(c) for c in ("en_US", "en-us", "EN", "pt-BR", "")] == [
        "en",
        "en",
        "en",
        "pt",
        "en",
    ]


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("\x1b[31mred\x1b[0m alert, 5 m", "red alert, five meters"),
        ('<speak>Hello <break time="1s"/> world</speak>', "Hello world"),
        ("&lt;speak&gt;Escaped&lt;/speak&gt; markup", "Escaped markup"),
        ("zero\u200bwidth\x00 and \ufffd lost", "zerowidth and lost"),
        ("I love 🍕 and 👨\u200d👩\u200d👧, 👍🏽 ok ❤️", "I love and , ok"),
        ("\ue000private use", "private use"),
    ],
)
def test_what_is_not_meant_to_be_heard_is_never_read(text: str, spoken: str) -> None:
    """Even on text ingested before the hygiene rules (probes of an older corpus)."""
    assert normalize_text(text) == spoken


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        (
            "Visit https://www.example.com/docs/intro?lang=en#top.",
            "Visit w w w dot example dot com slash docs slash intro.",
        ),
        ("Write to jane.doe@mail.example.org", "Write to jane dot doe at mail dot example dot org"),
        ("see example.com or github.io", "see example dot com or github dot io"),
        (
            "http://localhost:8080/a_b",
            "localhost colon eight thousand and eighty slash a underscore b",
        ),
    ],
)
def test_addresses_are_read_by_their_parts(text: str, spoken: str) -> None:
    assert normalize_text(text) == spoken


def test_numbers_past_fifteen_digits_are_read_digit_by_digit() -> None:
    assert normalize_text("999999999999999").startswith("nine hundred and ninety-nine trillion")
    assert normalize_text("1234567890123456") == (
        "one two three four five six seven eight nine zero one two three four five six"
    )
    # Every digit kept, where num2words would round through a float.
    assert normalize_text("pi is 3.14159265358979323846").endswith(
        "nine seven nine three two three eight four six"
    )
    huge = "9" * 5000  # past num2words' range and int()'s default digit limit
    for text in (huge, f"${huge}", f"{huge}th", f"1/{huge}", f"{huge} kg", f"{huge}.5"):
        spoken = normalize_text(text)
        assert spoken.count("nine") >= 5000 and len(spoken) < 6 * len(text)
    assert normalize_text("2" * 17, "de") == " ".join(["zwei"] * 17)


@settings(max_examples=500, deadline=None)
@given(st.text(), st.sampled_from(["en", "de", "ja", "ar", "zz"]))
def test_the_normaliser_never_raises(text: str, language: str) -> None:
    assert isinstance(normalize_text(text, language), str)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789,.$£%/:-–thsndr kgm°C#No", max_size=300))
def test_the_normaliser_never_raises_on_numbers(text: str) -> None:
    assert isinstance(normalize_text(text), str)
