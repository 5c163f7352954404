"""The SIFT response format: writing, tolerant reading, and constrained-decoding candidates."""

from typing import List, Sequence, Tuple

import pytest
import spacy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spacy.tokens import Doc, Span

from spacy_seqlab.sift.response import (
    NO_SPANS,
    SEPARATOR,
    ParsedResponse,
    candidate_lines,
    format_response,
    parse_response,
)

VOCAB = spacy.blank("en").vocab

# Word pools: repeated words (so surface strings repeat), punctuation, the separator's bar,
# Unicode and emoji, a token with an inner space, tokens that concatenate into other tokens
# ("a" + "b" = "ab"), whitespace tokens, and strings that look like format syntax.
WORD_POOLS = [
    [
        "Paris",
        "paris",
        "New",
        "York",
        "the",
        "a",
        "Zürich",
        "東京",
        "😀",
        "👩‍👩‍👧",
        ",",
        ".",
        "|",
        "-",
        "'s",
        "São Paulo",
        "(none)",
        "1.",
        "7",
    ],
    ["a", "Paris", "|"],
    ["a", "b", "ab", "a b", "|", "2"],
    ["x", "x", "y", " ", "\n", "東京", "-"],
]
LABELS = ["LOC", "PER", "misc", "B-ORG", "7", "Ünï", "two words"]
MAX_SPAN = 8


def make_doc(words: Sequence[str], spaces: Sequence[bool] = None) -> Doc:
    return Doc(VOCAB, words=list(words), spaces=list(spaces) if spaces is not None else None)


def writable(text: str) -> bool:
    return bool(text) and text == text.strip() and "\n" not in text


@st.composite
def docs(draw, max_words: int = 25) -> Doc:
    pool = draw(st.sampled_from(WORD_POOLS))
    words = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=max_words))
    spaces = draw(st.lists(st.booleans(), min_size=len(words), max_size=len(words)))
    return make_doc(words, spaces)


@st.composite
def docs_with_spans(draw) -> Tuple[Doc, List[Span], List[str]]:
    """A Doc and random non-overlapping writable spans: adjacent ones (gap 0), ones at the
    start and end, and, with the small pools, repeated words where only a later one is a span."""
    doc = draw(docs())
    labels = draw(st.lists(st.sampled_from(LABELS), min_size=1, max_size=4, unique=True))
    spans = []
    i = draw(st.integers(0, 2))
    while i < len(doc):
        end = min(i + draw(st.integers(1, MAX_SPAN)), len(doc))
        if draw(st.booleans()) and writable(doc[i:end].text):
            spans.append(Span(doc, i, end, label=draw(st.sampled_from(labels))))
        i = end + draw(st.integers(0, 3))
    return doc, draw(st.permutations(spans)), labels


def as_tuples(spans: Sequence[Span]) -> List[Tuple[int, int, str]]:
    return sorted((span.start, span.end, span.label_) for span in spans)


def assert_valid(doc: Doc, parsed: ParsedResponse, labels: Sequence[str], response: str) -> None:
    """Everything parse_response returns must be usable as spans of doc, whatever the response."""
    previous_end = 0
    for start, end, label in parsed.spans:
        assert type(start) is int and type(end) is int
        assert previous_end <= start < end <= len(doc), parsed.spans
        assert label in labels
        assert doc[start:end].text in response  # a span comes from the response's text
        previous_end = end
    assert len(parsed.spans) + parsed.dropped + int(parsed.no_spans_marker) == parsed.lines
    assert parsed.garbage == (parsed.lines > 0 and not parsed.spans and not parsed.no_spans_marker)


# -- writing and round trip --------------------------------------------------------------------


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(docs_with_spans())
def test_round_trip_gives_back_exactly_the_spans(case):
    doc, spans, labels = case
    response = format_response(doc, spans)
    parsed = parse_response(doc, response, labels)
    assert parsed.spans == as_tuples(spans)
    assert parsed.dropped == 0
    assert not parsed.garbage
    assert not response.endswith("\n")
    if not spans:
        assert response == NO_SPANS and parsed.no_spans_marker


def test_second_occurrence_of_a_repeated_word_gets_k():
    doc = make_doc(["Paris", "is", "not", "Paris", "."])
    response = format_response(doc, [Span(doc, 3, 4, label="LOC")])
    assert response == "Paris | LOC | 2"
    assert parse_response(doc, response, ["LOC"]).spans == [(3, 4, "LOC")]
    # k counts from the end of the previous span, not from the start of the text.
    both = format_response(doc, [Span(doc, 0, 1, label="LOC"), Span(doc, 3, 4, label="PER")])
    assert both == "Paris | LOC\nParis | PER"


def test_overlapping_occurrences_are_counted():
    doc = make_doc(["a", "a", "a"])  # "a a" occurs at tokens 0 and 1
    response = format_response(doc, [Span(doc, 1, 3, label="X")])
    assert response == "a a | X | 2"
    assert parse_response(doc, response, ["X"]).spans == [(1, 3, "X")]


def test_only_token_aligned_occurrences_count():
    # "York" inside "NewYorker" and "Yorkshire" is not an occurrence of the token "York".
    doc = make_doc(["NewYorker", "Yorkshire", "York"], [True, True, False])
    response = format_response(doc, [Span(doc, 2, 3, label="LOC")])
    assert response == "York | LOC"
    assert parse_response(doc, "Yorker | LOC\nYork | LOC", ["LOC"]).spans == [(2, 3, "LOC")]


def test_text_with_separator_and_numeric_label():
    doc = make_doc(["a", "|", "3", "and", "a", "|", "3"])
    spans = [Span(doc, 4, 7, label="7")]
    response = format_response(doc, spans)
    assert response == "a | 3 | 7 | 2"
    assert parse_response(doc, response, ["7"]).spans == [(4, 7, "7")]
    # A numeric label is always followed by k, so the last field is never ambiguous.
    assert format_response(doc, [Span(doc, 0, 1, label="7")]) == "a | 7 | 1"


def test_format_response_rejects_what_cannot_be_read_back():
    doc = make_doc(["New", "\n", "York", "is", " ", "big"], [False, False, True, True, False, False])
    plain = make_doc(["New", "York", "is", "big"])
    with pytest.raises(ValueError, match="overlap"):
        format_response(plain, [Span(plain, 0, 2, label="LOC"), Span(plain, 1, 2, label="LOC")])
    with pytest.raises(ValueError, match="overlap"):  # the same span twice
        format_response(plain, [Span(plain, 3, 4, label="LOC"), Span(plain, 3, 4, label="PER")])
    with pytest.raises(ValueError, match="line break"):
        format_response(doc, [Span(doc, 0, 3, label="LOC")])  # crosses a newline token
    with pytest.raises(ValueError, match="whitespace"):
        format_response(doc, [Span(doc, 3, 5, label="LOC")])  # ends with a whitespace token
    for label in ["A | B", "A\nB", "| A", "A |", " A", ""]:
        with pytest.raises(ValueError, match="cannot be written"):
            format_response(doc, [Span(doc, 5, 6, label=label)])
    other = make_doc(["New", "York"])
    with pytest.raises(ValueError, match="different Doc"):
        format_response(doc, [Span(other, 0, 1, label="LOC")])
    assert format_response(doc, []) == NO_SPANS


# -- reading malformed responses -----------------------------------------------------------------

TEXT = ["Alice", "met", "Bob", "in", "Paris", "and", "paris", "again", "."]
KNOWN = ["PER", "LOC"]


@pytest.mark.parametrize(
    "response, spans, dropped, garbage",
    [
        ("Alice | PER\nBob", [(0, 1, "PER")], 1, False),  # missing label
        ("Alice | ANIMAL", [], 1, True),  # unknown label
        (
            "Alice | per\nBob | 'Per'\nParis |  \"loc\" ",
            [(0, 1, "PER"), (2, 3, "PER"), (4, 5, "LOC")],
            0,
            False,
        ),  # label case/quotes
        ("London | LOC", [], 1, True),  # text not in the doc
        ("Ali | PER\nice | PER", [], 2, True),  # substrings that are not token-aligned
        ("Alice | PER\nBob | PE", [(0, 1, "PER")], 1, False),  # truncated label
        ("Alice | PER\nBo", [(0, 1, "PER")], 1, False),  # truncated line
        ("Sure! Here are the entities:\nAlice | PER\nHope this helps.", [(0, 1, "PER")], 2, False),  # prose
        ('{"Alice": "PER", "Bob": "PER"}', [], 1, True),  # JSON
        ('[\n  {"text": "Alice", "label": "PER"}\n]', [], 3, True),
        ("", [], 0, False),
        ("  \n\n \t \n", [], 0, False),
        ("(none)", [], 0, False),
        ("(NONE)\nAlice | PER", [], 0, False),  # lines after (none) are ignored
        ("Alice | PER\n(none)\nBob | PER", [(0, 1, "PER")], 0, False),
        ("Paris | LOC\nParis | LOC", [(4, 5, "LOC")], 1, False),  # repeated line, one occurrence
        ("Bob | PER\nAlice | PER", [(2, 3, "PER")], 1, False),  # out of order: Alice is before the cursor
        (
            "- Alice | PER\n2. Bob | PER\n* Paris | LOC",
            [(0, 1, "PER"), (2, 3, "PER"), (4, 5, "LOC")],
            0,
            False,
        ),  # bullets
        ("Paris | LOC | 2", [], 1, True),  # only one "Paris"
        ("paris | LOC | 1", [(6, 7, "LOC")], 0, False),
        ("Alice | PER | 0", [], 1, True),
        ("Alice | PER | " + "9" * 5000, [], 1, True),  # a huge k must not raise
        ("Alice  |  PER\r\nBob | PER\r\n", [(0, 1, "PER"), (2, 3, "PER")], 0, False),  # spacing, CRLF
        ("Alice|PER", [], 1, True),  # no separator
        (" | PER\n | \n|", [], 3, True),  # empty fields
    ],
)
def test_malformed_responses(response, spans, dropped, garbage):
    doc = make_doc(TEXT)
    parsed = parse_response(doc, response, KNOWN)
    assert parsed.spans == spans
    assert parsed.dropped == dropped
    assert parsed.garbage == garbage
    assert_valid(doc, parsed, KNOWN, response)


def test_bullet_is_kept_when_it_is_part_of_the_text():
    doc = make_doc(["-", "Alice", "and", "Alice"])
    assert parse_response(doc, "- Alice | PER", KNOWN).spans == [(0, 2, "PER")]
    assert parse_response(doc, "- Alice | PER\n- Alice | PER", KNOWN).spans == [(0, 2, "PER"), (3, 4, "PER")]


def test_exact_label_spelling_wins_over_case_insensitive_match():
    doc = make_doc(["Alice", "Bob"])
    parsed = parse_response(doc, "Alice | loc\nBob | LOC", ["LOC", "loc"])
    assert parsed.spans == [(0, 1, "loc"), (1, 2, "LOC")]


def test_non_string_response_is_a_type_error():
    with pytest.raises(TypeError):
        parse_response(make_doc(TEXT), None, KNOWN)  # type: ignore[arg-type]


FRAGMENTS = [
    "Paris",
    "paris",
    "a",
    "|",
    " | ",
    "LOC",
    "loc",
    "7",
    "2",
    "0",
    "(none)",
    "\n",
    "- ",
    "1. ",
    " ",
    "東京",
    '"',
    "ab",
    "b",
]


@settings(max_examples=300, deadline=None)
@given(doc=docs(), response=st.one_of(st.text(), st.lists(st.sampled_from(FRAGMENTS), max_size=40).map("".join)))
def test_any_string_gives_only_valid_spans(doc, response):
    labels = ["LOC", "7"]
    parsed = parse_response(doc, response, labels)
    assert_valid(doc, parsed, labels, response)


class CountingText(str):
    """A Doc text that counts the characters ``find`` runs over: the parser's work, without a clock."""

    scanned = 0

    def find(self, needle, start=0, *args):
        hit = super().find(needle, start, *args)
        CountingText.scanned += (len(self) if hit < 0 else hit + len(needle)) - start
        return hit


@pytest.fixture
def counted_text(monkeypatch):
    from spacy_seqlab.sift import occurrences

    init = occurrences.TokenIndex.__init__

    def counting_init(self, doc):
        init(self, doc)
        self.text = CountingText(self.text)

    monkeypatch.setattr(occurrences.TokenIndex, "__init__", counting_init)
    CountingText.scanned = 0
    return CountingText


def test_ten_thousand_line_response(counted_text):
    doc = make_doc(TEXT + ["Paris", "Paris"])
    response = "\n".join(["Paris | LOC"] * 10_000)
    parsed = parse_response(doc, response, KNOWN)
    assert parsed.spans == [(4, 5, "LOC"), (9, 10, "LOC"), (10, 11, "LOC")]
    assert parsed.dropped == 10_000 - 3 and parsed.lines == 10_000
    # One string is scanned for once per pass, however many lines repeat it.
    assert counted_text.scanned <= 2 * len(doc.text)


def test_long_doc_parses_in_linear_work(counted_text):
    words = [["the", "cat", "sat", "on", "Paris", ",", "then", "New", "York", "."][i % 10] for i in range(50_000)]
    doc = make_doc(words)
    # Valid lines far apart, and lines whose text is everywhere as a substring but never
    # token-aligned ("e", "at"), which must not rescan the document on every line.
    lines = []
    for i in range(300):
        lines.append(["New York | LOC", "e | LOC", "at | LOC", "Paris | LOC | 40", "Lyon | LOC"][i % 5])
    parsed = parse_response(doc, "\n".join(lines), ["LOC"])
    assert len(parsed.spans) == 60 + 60  # every "New York" and every "Paris | LOC | 40" line matches
    assert parsed.dropped == 180
    assert_valid(doc, parsed, ["LOC"], "\n".join(lines))
    # Each of the 5 distinct strings is scanned for over the text at most about once (a rescan per
    # line would be 60 times that).
    assert counted_text.scanned <= 5 * 2 * len(doc.text)


# -- candidate lines -----------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(docs_with_spans())
def test_candidate_lines_contain_every_line_format_response_writes(case):
    doc, spans, labels = case
    response = format_response(doc, spans)
    cursor = 0
    for span, line in zip(sorted(spans, key=lambda sp: sp.start), response.split("\n") if spans else []):
        assert (line, span.start, span.end) in set(candidate_lines(doc, labels, cursor, MAX_SPAN))
        cursor = span.end


def brute_force_candidates(doc: Doc, labels: Sequence[str], cursor: int, max_span: int) -> List[Tuple[str, int, int]]:
    """Reference: k by comparing the text of every token span (of any length) that starts before s."""
    out = []
    for s in range(cursor, len(doc)):
        for e in range(s + 1, min(s + max_span, len(doc)) + 1):
            text = doc[s:e].text
            if not writable(text):
                continue
            k = 1 + sum(doc[a:b].text == text for a in range(cursor, s) for b in range(a + 1, len(doc) + 1))
            for label in labels:
                fields = [text, label] + ([str(k)] if k > 1 or label.isdigit() else [])
                out.append((SEPARATOR.join(fields), s, e))
    return out


@settings(max_examples=150, deadline=None)
@given(doc=docs(max_words=12), data=st.data())
def test_candidate_lines_match_brute_force(doc, data):
    cursor = data.draw(st.integers(0, len(doc)))
    max_span = data.draw(st.integers(1, 4))
    labels = ["LOC", "7"]
    got = candidate_lines(doc, labels, cursor, max_span)
    assert got == brute_force_candidates(doc, labels, cursor, max_span)
    # Each candidate, written after a span ending at the cursor, reads back as that span.
    for line, s, e in got[:20]:
        if cursor > 0 and writable(doc[cursor - 1 : cursor].text):
            prefix = format_response(doc, [Span(doc, cursor - 1, cursor, label="LOC")])
            parsed = parse_response(doc, prefix + "\n" + line, labels)
            assert parsed.spans[-1][:2] == (s, e)


def test_candidate_lines_example():
    doc = make_doc(["Paris", "and", "Paris", " "], [True, True, False, False])
    got = candidate_lines(doc, ["LOC", "PER"], 1, max_span_tokens=2)
    assert got == [
        ("and | LOC", 1, 2),
        ("and | PER", 1, 2),
        ("and Paris | LOC", 1, 3),
        ("and Paris | PER", 1, 3),
        ("Paris | LOC", 2, 3),
        ("Paris | PER", 2, 3),
    ]  # "Paris " (ends with a whitespace token) and " " are not writable
    assert candidate_lines(doc, ["LOC"], 0, 1)[0] == ("Paris | LOC", 0, 1)
    assert ("Paris | LOC | 2", 2, 3) in candidate_lines(doc, ["LOC"], 0, 1)
    assert candidate_lines(doc, ["LOC"], len(doc)) == []
    with pytest.raises(ValueError, match="cursor_token"):
        candidate_lines(doc, ["LOC"], len(doc) + 1)
    with pytest.raises(ValueError, match="max_span_tokens"):
        candidate_lines(doc, ["LOC"], 0, 0)
    with pytest.raises(ValueError, match="cannot be written"):
        candidate_lines(doc, ["A | B"], 0)
