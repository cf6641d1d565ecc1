"""Numbers, abbreviations and symbols are spelled out the way a person reads them aloud."""

from __future__ import annotations

import pytest

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
