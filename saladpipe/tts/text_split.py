"""Split long texts into pieces an engine can speak, at sentence boundaries first.

Engines have a longest input they speak well (XTTS: about 250 characters of
English); beyond it they truncate, rush or babble. A text is cut at sentence ends,
a sentence that is still too long at clause marks, then between words, and the
pieces are packed back together up to the limit, so no word is lost and the
engine gets as much context as it can take.
"""

from __future__ import annotations

import re

# Words that end with a period without ending a sentence (compared lower-case).
_ABBREVIATIONS = frozenset(
    re.findall(
        r"\S+",
        "mr mrs ms dr prof st jr sr vs etc e.g i.e approx no nos fig figs vol vols mt ft gen col "
        "lt capt sgt rev hon inc ltd co corp dept est jan feb mar apr jun jul aug sep sept oct nov "
        "dec mon tue wed thu fri sat sun a.m p.m u.s u.k cf al",
    )
)
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*\s+")
_CLAUSE_END = re.compile(r"(?:[,;:]|\s[-–—])\s+")


def split_sentences(text: str) -> list[str]:
    """Sentences of `text`, whitespace-normalised; abbreviations and initials do not end one."""
    text = " ".join(text.split())
    sentences: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        end = match.end()
        if _ends_sentence(text, match.start(), end):
            sentences.append(text[start:end].strip())
            start = end
    if text[start:].strip():
        sentences.append(text[start:].strip())
    return sentences


def _ends_sentence(text: str, mark: int, after: int) -> bool:
    if text[mark:after].rstrip("\"'”’)] \t\n") == ".":
        word = text[:mark].rsplit(" ", 1)[-1].lstrip("\"'“‘(").lower()
        if word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha()):
            return False
    following = text[after : after + 1]
    return not following or not following.islower()


def split_text(text: str, max_chars: int) -> list[str]:
    """Pieces of at most `max_chars` whose space-joined form is `text` whitespace-normalised."""
    if max_chars < 1:
        raise ValueError(f"max_chars must be positive, got {max_chars}")
    units: list[str] = []
    for sentence in split_sentences(text):
        units.extend(_fit(sentence, max_chars))
    return _pack(units, max_chars)


def _fit(sentence: str, max_chars: int) -> list[str]:
    """Cut one sentence at clause marks, then between words, then inside a word."""
    if len(sentence) <= max_chars:
        return [sentence]
    clauses = _split_after(sentence, _CLAUSE_END)
    if len(clauses) > 1:
        return [piece for clause in clauses for piece in _fit(clause, max_chars)]
    words = sentence.split(" ")
    if len(words) > 1:
        return _pack([p for word in words for p in _fit(word, max_chars)], max_chars)
    return [sentence[i : i + max_chars] for i in range(0, len(sentence), max_chars)]


def _split_after(text: str, pattern: re.Pattern[str]) -> list[str]:
    parts, start = [], 0
    for match in pattern.finditer(text):
        parts.append(text[start : match.end()].strip())
        start = match.end()
    parts.append(text[start:].strip())
    return [p for p in parts if p]


def _pack(units: list[str], max_chars: int) -> list[str]:
    """Join consecutive units with spaces while the result stays within the limit."""
    pieces: list[str] = []
    for unit in units:
        if pieces and len(pieces[-1]) + 1 + len(unit) <= max_chars:
            pieces[-1] = f"{pieces[-1]} {unit}"
        else:
            pieces.append(unit)
    return pieces
