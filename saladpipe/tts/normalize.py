"""Text normalisation: spell out what a TTS front end would misread.

eSpeak NG (and so Piper) reads "$5" as "dollar five" and "e.g." as "e g"; many
Coqui models read digits letter by letter. Before synthesis the text is rewritten
the way a person reads it aloud: numbers, currencies, ordinals, times, units,
abbreviations and symbols become words. The result is stored beside the original
text, so the trainer knows exactly what was said.

English gets the full treatment; other languages get their numbers spelled out by
num2words where it knows the language, and are otherwise left as they are.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

from num2words import num2words

_NUMBER = r"\d[\d,]*(?:\.\d+)?"

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

_FRACTIONS = {
    (1, 2): "one half",
    (1, 3): "one third",
    (2, 3): "two thirds",
    (1, 4): "one quarter",
    (3, 4): "three quarters",
}


def base_language(language: str) -> str:
    """The two- or three-letter code of a locale: en_US, en-us and en all give en."""
    return re.split(r"[_-]", language.strip(), maxsplit=1)[0].lower() or "en"


def normalize_text(text: str, language: str = "en") -> str:
    """Rewrite `text` as it is read aloud; the language picks the rules."""
    text = unicodedata.normalize("NFKC", text).replace("⁄", "/")
    lang = base_language(language)
    if lang == "en":
        for rule in _ENGLISH_RULES:
            text = rule(text)
    else:
        text = _numbers(text, lang)
    return " ".join(text.split())


def _say(value: float | int, lang: str = "en", **kwargs: str) -> str:
    return str(num2words(value, lang=lang, **kwargs))


def _to_number(raw: str) -> int | float:
    raw = raw.replace(",", "")
    return float(raw) if "." in raw else int(raw)


def _money(match: re.Match[str]) -> str:
    one, many, sub_one, sub_many = _CURRENCIES[match.group(1)]
    raw, scale = match.group(2), match.group(3)
    if scale:
        return f"{_say(_to_number(raw))} {scale} {many}"
    whole, _, fraction = raw.replace(",", "").partition(".")
    units = int(whole or 0)
    words = f"{_say(units)} {one if units == 1 else many}"
    cents = int((fraction + "00")[:2]) if fraction else 0
    if cents:
        words += f" and {_say(cents)} {sub_one if cents == 1 else sub_many}"
    return words


def _unit(match: re.Match[str]) -> str:
    value = _to_number(match.group(1))
    one, many = _UNITS[match.group(2)]
    return f"{_say(value)} {one if value == 1 else many}"


def _time(match: re.Match[str]) -> str:
    hours, minutes = int(match.group(1)), int(match.group(2))
    if minutes == 0:
        return f"{_say(hours)} o'clock"
    if minutes < 10:
        return f"{_say(hours)} oh {_say(minutes)}"
    return f"{_say(hours)} {_say(minutes)}"


def _fraction(match: re.Match[str]) -> str:
    top, bottom = int(match.group(1)), int(match.group(2))
    return _FRACTIONS.get((top, bottom)) or f"{_say(top)} over {_say(bottom)}"


def _plain_number(match: re.Match[str]) -> str:
    raw = match.group(0)
    if re.fullmatch(r"1[1-9]\d\d|20\d\d", raw):
        return _say(int(raw), to="year")
    return _say(_to_number(raw))


def _numbers(text: str, lang: str) -> str:
    """Spell out the remaining numbers; a language num2words lacks keeps its digits."""

    def spell(match: re.Match[str]) -> str:
        try:
            return _say(_to_number(match.group(0)), lang)
        except NotImplementedError:
            return match.group(0)

    return re.sub(rf"(?<![\d.]){_NUMBER}(?<!,)", spell, text)


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
    _sub(r"(\d)\s?[–—]\s?(?=\d)", r"\1 to "),
    _sub(rf"([$£€¥])\s?({_NUMBER})(?:\s?({_SCALES})\b)?", _money),
    _sub(rf"({_NUMBER})\s?({_UNIT_NAMES})(?![\w/])", _unit),
    _sub(r"\b(\d+)(st|nd|rd|th)\b", lambda m: _say(int(m.group(1)), to="ordinal")),
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
