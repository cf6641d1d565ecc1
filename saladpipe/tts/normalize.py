"""Text normalisation: spell out what a TTS front end would misread.

eSpeak NG (and so Piper) reads "$5" as "dollar five" and "e.g." as "e g"; many
Coqui models read digits letter by letter. Before synthesis the text is rewritten
the way a person reads it aloud: numbers, currencies, ordinals, times, units,
abbreviations and symbols become words. The result is stored beside the original
text, so the trainer knows exactly what was said.

English gets the full treatment; other languages get their numbers spelled out by
num2words where it knows the language, and are otherwise left as they are.

In every language, what is not meant to be heard is never read out: terminal
escapes, controls, invisible characters and markup go by the rules of ingest
(`hygiene.py`, applied here too for texts ingested without them), and so do
pictographs (emoji, dingbats, with their joiners and modifiers) and private-use
characters, which engines read as garbage or as their code point names; the corpus
keeps them. A number longer than `MAX_SPELLED_DIGITS` digits is read digit by digit,
so the result stays proportional to the text and num2words never has to refuse.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable
from decimal import Decimal

from num2words import CONVERTER_CLASSES, num2words

from saladpipe.tts.hygiene import category_class, clean_text

_NUMBER = r"\d[\d,]*(?:\.\d+)?"
# Longest number read as a quantity (hundreds of trillions); longer runs of digits are
# codes (card, phone, id numbers) or noise, read digit by digit.
MAX_SPELLED_DIGITS = 15

_CURRENCIES = {
    "$": ("dollar", "dollars", "cent", "cents"),
    "£": ("pound", "pounds", "penny", "pence"),
    "€": ("euro", "euros", "cent", "cents"),
    "¥": ("yen", "yen", "sen", "sen"),
}
_SCALES = "thousand|million|billion|trillion"

_UNITS = {
    "km": ("kilometer", "kilometers"),
    "kg": ("kilogram", "kilograms"),
    "cm": ("centimeter", "centimeters"),
    "mm": ("millimeter", "millimeters"),
    "mg": ("milligram", "milligrams"),
    "ml": ("milliliter", "milliliters"),
    "m": ("meter", "meters"),
    "g": ("gram", "grams"),
    "lb": ("pound", "pounds"),
    "lbs": ("pound", "pounds"),
    "oz": ("ounce", "ounces"),
    "ft": ("foot", "feet"),
    "mph": ("mile per hour", "miles per hour"),
    "km/h": ("kilometer per hour", "kilometers per hour"),
    "°C": ("degree Celsius", "degrees Celsius"),
    "°F": ("degree Fahrenheit", "degrees Fahrenheit"),
    "°": ("degree", "degrees"),
}

_ABBREVIATIONS = {
    "Mr.": "Mister",
    "Mrs.": "Misses",
    "Ms.": "Miz",
    "Dr.": "Doctor",
    "Prof.": "Professor",
    "St.": "Saint",
    "Jr.": "Junior",
    "Sr.": "Senior",
    "Gen.": "General",
    "Col.": "Colonel",
    "Lt.": "Lieutenant",
    "Capt.": "Captain",
    "Sgt.": "Sergeant",
    "Mt.": "Mount",
    "vs.": "versus",
    "etc.": "et cetera",
    "e.g.": "for example",
    "i.e.": "that is",
    "approx.": "approximately",
    "a.m.": "A M",
    "p.m.": "P M",
}

_SYMBOLS = {
    "&": " and ",
    "+": " plus ",
    "=": " equals ",
    "@": " at ",
    "×": " times ",
    "~": " about ",
    "%": " percent ",
}

# A web or e-mail address is read by its parts: "example dot com slash news".
_URL = r"(?:\b(?:https?|ftp)://|\bwww\.)[^\s<>\"'(){}\[\]]*[^\s<>\"'(){}\[\].,;:!?]"
_EMAIL = r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b"
_DOMAIN = r"\b(?:[A-Za-z0-9-]+\.)+(?:com|org|net|edu|gov|io)\b"
_ADDRESS_MARKS = {
    ".": "dot",
    "/": "slash",
    "-": "dash",
    "_": "underscore",
    "@": "at",
    ":": "colon",
    "~": "tilde",
    "+": "plus",
    "=": "equals",
    "&": "and",
    "%": "percent",
}

_FRACTIONS = {
    ("1", "2"): "one half",
    ("1", "3"): "one third",
    ("2", "3"): "two thirds",
    ("1", "4"): "one quarter",
    ("3", "4"): "three quarters",
}


def base_language(language: str) -> str:
    """The two- or three-letter code of a locale: en_US, en-us and en all give en."""
    return re.split(r"[_-]", language.strip(), maxsplit=1)[0].lower() or "en"


def normalize_text(text: str, language: str = "en") -> str:
    """Rewrite `text` as it is read aloud; the language picks the rules."""
    text = unspoken_removed(unicodedata.normalize("NFKC", text).replace("⁄", "/"))
    lang = base_language(language)
    if lang == "en":
        for rule in _ENGLISH_RULES:
            text = rule(text)
    else:
        text = _numbers(text, lang)
    return " ".join(text.split())


def unspoken_removed(text: str) -> str:
    """Without what is not meant to be heard, for every engine, normalised or not.
    Cleaning is repeated until nothing changes, so that escaped markup
    (`&lt;speak&gt;`) is not read out either."""
    while (cleaned := clean_text(text).text) != text:
        text = cleaned
    return _pictographs().sub(" ", text)


@functools.cache
def _pictographs() -> re.Pattern[str]:
    """Symbols (category So, beyond Latin-1's ° © ®) in sequences with their joiners,
    skin tones, presentation selectors and tags; stray selectors; private-use characters."""
    symbol = f"(?![\\x00-\\xff])[{category_class('So')}]"
    part = "[\ufe0e\ufe0f\u20e3\U0001f3fb-\U0001f3ff\U000e0020-\U000e007f]"
    private = f"[{category_class('Co')}]"
    return re.compile(f"{symbol}{part}*(?:\u200d{symbol}{part}*)*|{part}+|{private}+")


def _say(value: int | Decimal, lang: str = "en", **kwargs: str) -> str:
    """num2words, or the number as written where it cannot say it (past its range in a
    language: each language's converter fails its own way)."""
    try:
        return str(num2words(value, lang=lang, **kwargs))
    except Exception:
        return str(value)


@functools.cache
def _say_digit(digit: str, lang: str) -> str:
    return _say(int(digit), lang)


def _say_digits(digits: str, lang: str) -> str:
    return " ".join(_say_digit(d, lang) for d in digits)


def _say_integer(digits: str, lang: str = "en", **kwargs: str) -> str:
    """A whole number, given as its digits, as words; past MAX_SPELLED_DIGITS (and so
    past what num2words and int() take), digit by digit."""
    if len(digits) > MAX_SPELLED_DIGITS:
        return _say_digits(digits, lang)
    return _say(int(digits), lang, **kwargs)


def _say_number(raw: str, lang: str = "en") -> str:
    """A written number (thousands commas, a decimal point) as words. A long decimal is
    read digit by digit after the point ("point" in English, the point as written in
    other languages); num2words would round it to a float's 15 digits."""
    whole, _, fraction = raw.replace(",", "").partition(".")
    if not fraction:
        return _say_integer(whole, lang)
    if len(whole) + len(fraction) <= MAX_SPELLED_DIGITS:
        return _say(Decimal(f"{whole}.{fraction}"), lang)
    point = "point" if lang == "en" else "."
    return f"{_say_integer(whole, lang)} {point} {_say_digits(fraction, lang)}"


def _is_one(raw: str) -> bool:
    return Decimal(raw.replace(",", "")) == 1


def _address(match: re.Match[str]) -> str:
    """Scheme, query and fragment are not read; "www" is spelled; marks are named."""
    address = re.sub(r"^(?:https?|ftp)://", "", match.group(), flags=re.IGNORECASE)
    address = re.split(r"[?#]", address, maxsplit=1)[0].rstrip("/")
    address = re.sub(r"\bwww\b", "w w w", address, flags=re.IGNORECASE)
    return re.sub(r"[^\w\s]|_", lambda m: f" {_ADDRESS_MARKS.get(m.group(), '')} ", address)


def _money(match: re.Match[str]) -> str:
    one, many, sub_one, sub_many = _CURRENCIES[match.group(1)]
    raw, scale = match.group(2), match.group(3)
    if scale:
        return f"{_say_number(raw)} {scale} {many}"
    whole, _, fraction = raw.replace(",", "").partition(".")
    words = f"{_say_integer(whole)} {one if _is_one(whole) else many}"
    cents = int((fraction + "00")[:2]) if fraction else 0
    if cents:
        words += f" and {_say(cents)} {sub_one if cents == 1 else sub_many}"
    return words


def _unit(match: re.Match[str]) -> str:
    raw = match.group(1)
    one, many = _UNITS[match.group(2)]
    return f"{_say_number(raw)} {one if _is_one(raw) else many}"


def _time(match: re.Match[str]) -> str:
    hours, minutes = int(match.group(1)), int(match.group(2))
    if minutes == 0:
        return f"{_say(hours)} o'clock"
    if minutes < 10:
        return f"{_say(hours)} oh {_say(minutes)}"
    return f"{_say(hours)} {_say(minutes)}"


def _fraction(match: re.Match[str]) -> str:
    top, bottom = match.group(1), match.group(2)
    if (top, bottom) in _FRACTIONS:
        return _FRACTIONS[top, bottom]
    return f"{_say_integer(top)} over {_say_integer(bottom)}"


def _plain_number(match: re.Match[str]) -> str:
    raw = match.group(0)
    if re.fullmatch(r"1[1-9]\d\d|20\d\d", raw):
        return _say(int(raw), to="year")
    return _say_number(raw)


def _numbers(text: str, lang: str) -> str:
    """Spell out the remaining numbers; a language num2words lacks keeps its digits."""
    if lang not in CONVERTER_CLASSES:
        return text
    return re.sub(rf"(?<![\d.]){_NUMBER}(?<!,)", lambda m: _say_number(m.group(), lang), text)


def _sub(pattern: str, repl: str | Callable[[re.Match[str]], str]) -> Callable[[str], str]:
    compiled = re.compile(pattern)
    return lambda text: compiled.sub(repl, text)


def _abbreviations(text: str) -> str:
    for short, long in _ABBREVIATIONS.items():
        text = re.sub(rf"(?<![\w.]){re.escape(short)}", long, text)
    return text


def _symbols(text: str) -> str:
    for symbol, word in _SYMBOLS.items():
        text = text.replace(symbol, word)
    return text


_UNIT_NAMES = "|".join(re.escape(u) for u in sorted(_UNITS, key=len, reverse=True))

# Order matters: composite forms (money, units, ordinals) before bare numbers.
_ENGLISH_RULES: tuple[Callable[[str], str], ...] = (
    _sub(f"{_URL}|{_EMAIL}|{_DOMAIN}", _address),
    _sub(r"(\d)\s?[–—]\s?(?=\d)", r"\1 to "),
    _sub(rf"([$£€¥])\s?({_NUMBER})(?:\s?({_SCALES})\b)?", _money),
    _sub(rf"({_NUMBER})\s?({_UNIT_NAMES})(?![\w/])", _unit),
    _sub(r"\b(\d+)(st|nd|rd|th)\b", lambda m: _say_integer(m.group(1), to="ordinal")),
    _sub(r"\b(\d{1,2}):(\d{2})\b", _time),
    _sub(r"\b(\d+)/(\d+)\b", _fraction),
    _sub(r"\bNo\.\s?(?=\d)", "number "),
    _sub(r"#\s?(?=\d)", "number "),
    _abbreviations,
    _sub(r"(?<![\w.])-(?=\d)", "minus "),
    _sub(rf"(?<![\d.]){_NUMBER}(?<!,)", _plain_number),
    _sub(r"(?<=\w)/(?=\w)", " "),
    _symbols,
)
