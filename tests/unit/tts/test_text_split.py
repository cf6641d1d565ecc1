"""Long texts are split at sentence boundaries within an engine's limit, losing nothing."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from saladpipe.tts.text_split import split_sentences, split_text

PARAGRAPH = (
    "Dr. Smith met J. R. R. Tolkien in Oxford. They talked about languages, myths and "
    "the sea; it was 3.5 p.m. when they stopped. Was it worth it? Yes! The rest of the "
    "afternoon, e.g. the walk along the river and the long dinner that followed, is "
    "another story, told elsewhere, in a book nobody has read to the end."
)


def test_sentences_end_at_terminal_punctuation_not_at_abbreviations_or_initials() -> None:
    assert split_sentences(PARAGRAPH) == [
        "Dr. Smith met J. R. R. Tolkien in Oxford.",
        "They talked about languages, myths and the sea; it was 3.5 p.m. when they stopped.",
        "Was it worth it?",
        "Yes!",
        "The rest of the afternoon, e.g. the walk along the river and the long dinner that "
        "followed, is another story, told elsewhere, in a book nobody has read to the end.",
    ]
    assert split_sentences('He said "Stop." Then he left... And (quietly.) Done.') == [
        'He said "Stop."',
        "Then he left...",
        "And (quietly.)",
        "Done.",
    ]
    assert split_sentences("Prices rose, etc. and then fell.") == [
        "Prices rose, etc. and then fell."
    ]


def test_pieces_keep_sentences_whole_when_they_fit_and_pack_them_up_to_the_limit() -> None:
    pieces = split_text(PARAGRAPH, 100)
    assert all(len(p) <= 100 for p in pieces)
    assert " ".join(pieces) == PARAGRAPH
    # Whole sentences are packed up to the limit; the long last one is cut at a comma.
    assert pieces == [
        "Dr. Smith met J. R. R. Tolkien in Oxford.",
        "They talked about languages, myths and the sea; it was 3.5 p.m. when they stopped. "
        "Was it worth it?",
        "Yes! The rest of the afternoon, e.g. the walk along the river and the long dinner "
        "that followed,",
        "is another story, told elsewhere, in a book nobody has read to the end.",
    ]
    # XTTS's English limit (250) keeps every sentence of this paragraph whole.
    assert all(p[-1] in ".?!" for p in split_text(PARAGRAPH, 250))


def test_a_sentence_without_clause_marks_is_cut_between_words() -> None:
    text = " ".join(f"word{i}" for i in range(60))
    pieces = split_text(text, 50)
    assert all(len(p) <= 50 for p in pieces) and " ".join(pieces) == text


def test_a_word_longer_than_the_limit_is_cut_inside_and_nothing_is_lost() -> None:
    text = "Short start. " + "x" * 45 + " end."
    pieces = split_text(text, 20)
    assert all(len(p) <= 20 for p in pieces)
    assert "".join(pieces).replace(" ", "") == text.replace(" ", "")


def test_empty_and_whitespace_texts_have_no_pieces() -> None:
    assert split_text("", 100) == [] and split_text(" \n\t ", 100) == []


_WORDS = st.text(alphabet="abcdefghij.,;!? ", min_size=1, max_size=12)


@settings(max_examples=300, deadline=None)
@given(st.lists(_WORDS, min_size=1, max_size=40), st.integers(min_value=12, max_value=120))
def test_every_piece_fits_and_the_text_survives(words: list[str], limit: int) -> None:
    text = " ".join(words)
    pieces = split_text(text, limit)
    assert all(0 < len(p) <= limit for p in pieces)
    assert "".join(pieces).replace(" ", "") == text.replace(" ", "")
    normalized = " ".join(text.split())
    if all(len(w) <= limit for w in normalized.split(" ")):
        assert " ".join(pieces) == normalized
