"""Text hygiene: remove what no reader sees and no voice should say, keep every word.

Ingest cleans every corpus text with `clean_text` before it is stored, and the
normaliser applies the same rules before TTS (so a corpus ingested before them is
never read out as "thirty-one meters" for a colour code). Each rule removes one
kind of thing and counts it, so nothing is dropped silently:

- escapes: ANSI/ECMA-48 terminal sequences (CSI such as "\\x1b[31m", OSC, DCS, ...),
  removed whole;
- controls: NUL, the other C0 and C1 controls and DEL; tab, newline and carriage
  return are whitespace and stay;
- format: invisible format characters (category Cf: zero-width space, BOM, soft
  hyphen, bidi controls, LRM/RLM, word joiner, tag characters), except a zero-width
  joiner or non-joiner between two letters, marks or symbols (orthographic in
  Persian and Indic scripts, and the glue of emoji sequences) and the tag characters
  of an emoji flag sequence;
- replacement: U+FFFD, the mark a decoder leaves where text was already lost;
- noncharacters: U+FDD0..U+FDEF, U+xFFFE/U+xFFFF and lone surrogates, which are
  never valid text (a lone surrogate cannot even be written as UTF-8). Private-use
  characters are kept: their meaning is a private agreement the corpus may rely on;
  they are not letters, so a row of nothing else has nothing speakable, and the
  normaliser does not speak them;
- markup: SSML/HTML/XML tags, comments, processing instructions, doctypes, CDATA
  wrappers (their content kept, and cleaned like the rest), `<script>`/`<style>` with
  their content, and character entities (`&amp;`, `&#8203;`) unescaped; a tag of a
  block element stands for a space, an inline one (`<b>`, `<say-as>`) for nothing.
  A tag is `<name ...>`, `</name>` or `<name .../>` of an HTML or SSML element, of a
  namespaced name (`amazon:effect`), of a name whose closing tag is in the same text,
  or with `key=value` attributes; so `x < 3 and y > 2`, `List<String>` or `a<b` are
  text and stay as they are.
  Escaped markup (`&lt;b&gt;`) is text, and stays as the literal `<b>`.

A text without any character these rules look for is returned as it is (the same
object), so a clean corpus pays one regular-expression scan a row and nothing changes.
Known limit: `a<b c>d` reads as a `<b>` tag with an attribute `c` and loses it.
"""

from __future__ import annotations

import functools
import html
import itertools
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

Rule = Callable[[str], tuple[str, int]]

_CONTROLS = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
_JOINERS = "\u200c\u200d"
_NONCHARACTERS = "\ufdd0-\ufdef\ud800-\udfff" + "".join(
    f"{chr(plane + 0xFFFE)}{chr(plane + 0xFFFF)}" for plane in range(0, 0x110000, 0x10000)
)

_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"  # CSI: \x1b[31m (colour), \x1b[2J (clear), ...
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d-\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)"  # strings
    r"|\x1b[ -/]*[0-~]"  # the rest: charset selection (\x1b(B), reset (\x1bc), ...
)
# An emoji flag of a region (England: black flag, tag letters, cancel tag) keeps its tags.
_FLAG_SEQUENCE = "\U0001f3f4[\U000e0020-\U000e007e]+\U000e007f"

# Elements whose tags are markup wherever they appear: HTML's and SSML's.
_ELEMENTS = frozenset(
    """a abbr address article aside audio b bdi bdo big blockquote body br break button
    caption center cite code col dd del desc details dfn div dl dt em emphasis embed
    fieldset figcaption figure font footer form h1 h2 h3 h4 h5 h6 head header hr html i
    iframe img input ins kbd label lang legend lexicon li link main mark meta metadata nav
    nobr noscript ol option p par phoneme pre prosody q s samp say-as section select seq
    small source span speak strike strong sub summary sup table tbody td textarea tfoot th
    thead time title token tr tt u ul var video voice w wbr""".split()  # noqa: SIM905
)
# Inline elements join the words around them; any other tag stands for a space.
_INLINE = frozenset(
    """a abbr b bdi bdo big cite code del dfn em emphasis font i ins kbd mark nobr phoneme
    prosody q samp say-as small span strike strong sub sup time tt u var w wbr""".split()  # noqa: SIM905
)
_ATTRIBUTES = r"(?P<attrs>(?:\s+[\w:.-]+(?:\s*=\s*(?:\"[^\"<>]*\"|'[^'<>]*'|[^\s\"'<>=]+))?)*)"
_TAG = re.compile(rf"</?(?P<name>[A-Za-z][\w.:-]*){_ATTRIBUTES}\s*(?P<empty>/)?>")
_OPENING = re.compile(r"<([A-Za-z][\w.:-]*)")
_CLOSING = re.compile(r"</([A-Za-z][\w.:-]*)\s*>")
# Declarations bounded by the next angle bracket; constructs with a terminator string
# are matched only up to the last terminator, so an unterminated one costs no rescans.
_DECLARATIONS = re.compile(r"<\?[^<>]*\?>|<!(?!--|\[CDATA\[)[A-Za-z][^<>]*>")
_TERMINATED = (
    (re.compile(r"<!--.*?-->", re.S), re.compile(r"-->"), ""),
    (re.compile(r"<!\[CDATA\[(.*?)\]\]>", re.S), re.compile(r"\]\]>"), r"\1"),
    *(
        (
            re.compile(rf"<{name}\b[^<>]*>.*?</{name}\s*>", re.S | re.I),
            re.compile(rf"</{name}\s*>", re.I),
            " ",
        )
        for name in ("script", "style")
    ),
)
_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
_SPACES = re.compile(r"[ \t]{2,}")


@dataclass(frozen=True)
class Cleaned:
    """A text after the rules, and how many things each kind of rule removed."""

    text: str
    removed: dict[str, int] = field(default_factory=dict)


def clean_text(text: str) -> Cleaned:
    """`text` without escapes, controls, invisible format characters, U+FFFD,
    noncharacters and markup. Characters go first so none can hide a tag
    (`<sp\\u200beak>`); what unescaped entities bring (`&#8203;`) is cleaned after."""
    if not _suspect().search(text):
        return Cleaned(text)
    removed: dict[str, int] = {}
    text = _apply(_CHARACTER_RULES, text, removed)
    text, markup = strip_markup(text)
    if markup:
        removed["markup"] = markup
        text = _apply(_CHARACTER_RULES, text, removed)
    return Cleaned(text, removed)


def _apply(rules: tuple[tuple[str, Rule], ...], text: str, removed: dict[str, int]) -> str:
    for kind, rule in rules:
        text, n = rule(text)
        if n:
            removed[kind] = removed.get(kind, 0) + n
    return text


def strip_escapes(text: str) -> tuple[str, int]:
    """Terminal escape sequences, removed whole (not just their ESC byte)."""
    return _ESCAPES.subn("", text)


def strip_controls(text: str) -> tuple[str, int]:
    """C0 and C1 controls and DEL, except tab, newline and carriage return."""
    return _CONTROL_CHARACTERS.subn("", text)


def strip_format(text: str) -> tuple[str, int]:
    """Invisible format characters; a joiner between two joinable characters stays."""
    removed = 0

    def drop(match: re.Match[str]) -> str:
        nonlocal removed
        char, at = match.group(), match.start()
        if len(char) > 1 or (char in _JOINERS and _joins(text, at)):
            return char  # an emoji flag sequence, or an orthographic joiner
        removed += 1
        return ""

    return _format().sub(drop, text), removed


def strip_replacement(text: str) -> tuple[str, int]:
    """U+FFFD replacement characters."""
    return text.replace("\ufffd", ""), text.count("\ufffd")


def strip_noncharacters(text: str) -> tuple[str, int]:
    """Noncharacters and lone surrogates."""
    return _NONCHARACTER.subn("", text)


def strip_markup(text: str) -> tuple[str, int]:
    """Markup removed and entities unescaped; then runs of spaces and tabs, which removed
    tags leave, become one space."""
    count = 0
    for pattern, terminator, repl in _TERMINATED:
        text, n = _sub_terminated(pattern, terminator, repl, text)
        count += n
    text, n = _DECLARATIONS.subn(" ", text)
    count += n
    text, n = _strip_tags(text)
    count += n
    text, n = _ENTITY.subn(lambda m: html.unescape(m.group()), text)
    count += n
    return (_SPACES.sub(" ", text) if count else text), count


def _sub_terminated(
    pattern: re.Pattern[str], terminator: re.Pattern[str], repl: str, text: str
) -> tuple[str, int]:
    """`pattern.subn` on the text up to its last terminator: no match starts after it."""
    end = max((m.end() for m in terminator.finditer(text)), default=0)
    head, n = pattern.subn(repl, text[:end])
    return head + text[end:], n


def _strip_tags(text: str) -> tuple[str, int]:
    paired = {m.group(1).lower() for m in _CLOSING.finditer(text)} & {
        m.group(1).lower() for m in _OPENING.finditer(text)
    }
    removed = 0

    def tag(match: re.Match[str]) -> str:
        nonlocal removed
        name = match.group("name").lower()
        markup = (
            name in _ELEMENTS
            or name in paired
            or ":" in name
            or bool(match.group("empty"))
            or "=" in match.group("attrs")
        )
        if not markup:
            return match.group()
        removed += 1
        return "" if name in _INLINE else " "

    return _TAG.sub(tag, text), removed


def _joins(text: str, at: int) -> bool:
    """Whether the joiner at `at` stands between two letters, marks or symbols."""
    if at == 0 or at + 1 >= len(text):
        return False
    return all(_joinable(c) for c in (text[at - 1], text[at + 1]))


def _joinable(char: str) -> bool:
    category = unicodedata.category(char)
    return category[0] in "LM" or category in ("So", "Sk")


@functools.cache
def _category_ranges() -> dict[str, list[tuple[int, int]]]:
    """Every Unicode category's code points as ranges (one scan, once a process)."""
    ranges: dict[str, list[tuple[int, int]]] = {}
    start = 0
    for category, run in itertools.groupby(map(unicodedata.category, map(chr, range(0x110000)))):
        end = start + sum(1 for _ in run)
        ranges.setdefault(category, []).append((start, end - 1))
        start = end
    return ranges


@functools.cache
def category_class(category: str) -> str:
    """The code points of a Unicode category as the body of a regex character class."""
    return "".join(
        re.escape(chr(a)) + ("" if a == b else "-" + re.escape(chr(b)))
        for a, b in _category_ranges()[category]
    )


@functools.cache
def _format() -> re.Pattern[str]:
    return re.compile(f"{_FLAG_SEQUENCE}|[{category_class('Cf')}]")


@functools.cache
def _suspect() -> re.Pattern[str]:
    """Any character that some rule may remove: a text without one is clean."""
    return re.compile(f"[<&\ufffd{_CONTROLS}{_NONCHARACTERS}{category_class('Cf')}]")


_CONTROL_CHARACTERS = re.compile(f"[{_CONTROLS}]")
_NONCHARACTER = re.compile(f"[{_NONCHARACTERS}]")

_CHARACTER_RULES: tuple[tuple[str, Rule], ...] = (
    ("escapes", strip_escapes),
    ("controls", strip_controls),
    ("format", strip_format),
    ("replacement", strip_replacement),
    ("noncharacters", strip_noncharacters),
)
