"""The response format of generative sequence labeling (SIFT) and its tolerant parser.

A response lists the labeled spans of the query text, one line per span, in order of
appearance::

    TEXT | LABEL
    TEXT | LABEL | k

* ``TEXT`` is the span's exact surface text (``span.text``: the characters from the start
  of its first token to the end of its last token) and ``LABEL`` its label. The fields are
  separated by ``SEPARATOR`` (space, vertical bar, space). ``TEXT`` may itself contain
  ``" | "``: lines are split from the right.
* Repeated surface strings are identified by order of appearance. The reader keeps a
  *cursor*, the character offset where the previous span ended (0 before the first line).
  A line refers to the first *token-aligned* occurrence of ``TEXT`` at or after the cursor:
  an occurrence that starts where a token starts and ends where a token ends. Occurrences
  may overlap each other ("a a" occurs twice in "a a a"). When the span is the k-th such
  occurrence (k > 1; e.g. the first "Paris" of the text is not an entity but the second
  is), the line ends with ``" | k"``: ``Paris | LOC | 2``.
* ``" | k"`` is also written, as ``" | 1"``, when the label itself is a positive integer
  (``"7"``): then the last field of a line is a number exactly when it is ``k``, so every
  line reads back one way.
* A response with no spans is the single line ``(none)`` (``NO_SPANS``).
* Lines are joined with ``"\\n"``; there is no trailing newline.

What can be written: a span's text must be non-empty, must not start or end with
whitespace and must not contain a line break (a span that starts or ends with a whitespace
token, or crosses a newline, cannot be written). A label must be non-empty, must not have
surrounding whitespace, a line break, or ``" | "`` (including a leading ``"| "`` or a
trailing ``" |"``, which would merge with the separator). Spans must not overlap.

Reading (``parse_response``) never raises on any response string. Each line is stripped;
empty lines are skipped; the label is matched to the known labels exactly, else
case-insensitively with surrounding whitespace and quotes removed; a line with an unknown
label, or whose ``TEXT`` has no k-th token-aligned occurrence at or after the cursor, is
dropped (a repeated line therefore takes the next occurrence, or is dropped). A line that
does not read as it is but does once a leading bullet (``"- "``, ``"* "``, ``"• "``,
``"1. "``, ``"1) "``) is removed, is read without it. Reading stops at a ``(none)`` line
(any case). Spans come back as token offsets, in order and non-overlapping, because each
one starts at or after the end of the previous one.

``candidate_lines`` lists every line the format allows next at a cursor, for constrained
decoding; it writes lines exactly as ``format_response`` does.
"""

import re
from dataclasses import dataclass, field
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy
from spacy.tokens import Doc, Span

from .occurrences import Occurrences, TokenIndex

SEPARATOR = " | "
NO_SPANS = "(none)"

# A leading list marker a model may put before a line: "- ", "* ", "• ", "12. ", "12) ".
_BULLET = re.compile(r"^(?:[-*\u2022]|[0-9]{1,4}[.)])\s+")
_QUOTES = "\"'`\u201c\u201d\u2018\u2019"
# Longer digit strings cannot be an occurrence count of any realistic text, and int() of
# very long digit strings raises in Python >= 3.11.
_MAX_K_DIGITS = 9


@dataclass
class ParsedResponse:
    """What ``parse_response`` read from one response.

    ``spans``: (start, end_exclusive, label) in TOKEN offsets of the Doc, in order and
    non-overlapping. ``dropped``: lines read that gave no span (the ``(none)`` line is not
    counted). ``lines``: non-empty lines read (up to and including a ``(none)`` line).
    ``no_spans_marker``: a ``(none)`` line was read.
    """

    spans: List[Tuple[int, int, str]] = field(default_factory=list)
    dropped: int = 0
    lines: int = 0
    no_spans_marker: bool = False

    @property
    def garbage(self) -> bool:
        """True when the response had content but no span could be read from it and it did
        not say ``(none)``: the model did not follow the format."""
        return self.lines > 0 and not self.spans and not self.no_spans_marker


# -- writing -------------------------------------------------------------------------------


def _is_positive_int(value: str) -> bool:
    value = value.strip()
    return value.isascii() and value.isdigit() and value.strip("0") != ""


def _normalize_label(label: str) -> str:
    return label.strip().strip(_QUOTES).strip().casefold()


def _check_label(label: str) -> None:
    """Raise a ValueError for a label that would not read back from a response line."""
    if not isinstance(label, str) or not label or label != label.strip() or not _normalize_label(label):
        raise ValueError(
            f"Label {label!r} cannot be written in a response: "
            "labels must be non-empty strings without surrounding whitespace"
        )
    if "\n" in label or SEPARATOR in f" {label} ":
        raise ValueError(
            f"Label {label!r} cannot be written in a response: it must not contain a line break or {SEPARATOR!r}, "
            "start with '| ' or end with ' |'"
        )


def _writable_text(text: str) -> bool:
    return bool(text) and text == text.strip() and "\n" not in text


def _line(text: str, label: str, k: int) -> str:
    fields = [text, label]
    if k > 1 or _is_positive_int(label):  # see module docstring: keeps lines unambiguous
        fields.append(str(k))
    return SEPARATOR.join(fields)


def format_response(doc: Doc, spans: Iterable[Span]) -> str:
    """Write the response for ``spans`` of ``doc`` (see the module docstring for the format).

    ``spans`` may come in any order; they are written sorted by position. Raises a
    ValueError when spans overlap or are empty, belong to another Doc, or when a span's
    text or label cannot be written.
    """
    ordered = sorted(spans, key=lambda span: (span.start, span.end))
    previous: Optional[Span] = None
    for span in ordered:
        if span.doc is not doc:
            raise ValueError(
                f"Span {span.text!r} ({span.start}, {span.end}) belongs to a different Doc than the one being formatted"
            )
        if span.start >= span.end:
            raise ValueError(f"Span at token {span.start} is empty and cannot be written")
        _check_label(span.label_)
        if not _writable_text(span.text):
            raise ValueError(
                f"Span {span.text!r} ({span.start}, {span.end}) cannot be written in a response: "
                "its text starts or ends with whitespace or contains a line break"
            )
        if previous is not None and span.start < previous.end:
            raise ValueError(
                f"Spans overlap: {previous.text!r} ({previous.start}, {previous.end}, {previous.label_}) "
                f"and {span.text!r} ({span.start}, {span.end}, {span.label_})"
            )
        previous = span
    if not ordered:
        return NO_SPANS
    index = TokenIndex(doc)
    found: Dict[str, Occurrences] = {}
    lines = []
    cursor = 0
    for span in ordered:
        text = span.text
        occurrences = found.get(text)
        if occurrences is None:
            occurrences = found[text] = Occurrences(index, text)
        lines.append(_line(text, span.label_, occurrences.rank(cursor, span.start_char)))
        cursor = span.end_char
    return "\n".join(lines)


# -- reading -------------------------------------------------------------------------------


class _Labels:
    """Maps a label field of a response line to the canonical label, or None."""

    def __init__(self, labels: Sequence[str]) -> None:
        self.exact = {label: label for label in labels if isinstance(label, str)}
        self.loose: Dict[str, str] = {}
        for label in self.exact:
            if _normalize_label(label):
                self.loose.setdefault(_normalize_label(label), label)  # first spelling wins

    def __call__(self, value: str) -> Optional[str]:
        label = self.exact.get(value)
        return label if label is not None else self.loose.get(_normalize_label(value))


def _readings(line: str) -> Iterator[Tuple[str, str, int]]:
    """(text, label, k) readings of a line, the one with an explicit k first."""
    fields = line.rsplit(SEPARATOR, 2)
    if len(fields) == 3 and _is_positive_int(fields[2]):
        digits = fields[2].strip()
        # An absurdly large k cannot match; 0 makes the caller drop the reading.
        yield fields[0], fields[1], int(digits) if len(digits) <= _MAX_K_DIGITS else 0
    fields = line.rsplit(SEPARATOR, 1)
    if len(fields) == 2:
        yield fields[0], fields[1], 1


def parse_response(doc: Doc, response: str, labels: Sequence[str]) -> ParsedResponse:
    """Read the spans of ``doc`` from a generated ``response``; tolerant, never raises on a string.

    See the module docstring for the format and how malformed lines are handled. Returns
    token offsets (start, end_exclusive, label) with labels spelled as in ``labels``.
    """
    if not isinstance(response, str):
        raise TypeError(f"response must be a str, got {type(response).__name__}")
    index = TokenIndex(doc)
    resolve = _Labels(labels)
    found: Dict[str, Occurrences] = {}
    parsed = ParsedResponse()
    cursor = 0

    def match(line: str) -> Optional[Tuple[int, int, str]]:
        for text, label_field, k in _readings(line):
            label = resolve(label_field)
            text = text.strip()
            if label is None or not text or k < 1:
                continue
            occurrences = found.get(text)
            if occurrences is None:
                occurrences = found[text] = Occurrences(index, text)
            start = occurrences.kth(cursor, k)
            if start is not None:
                return start, start + len(text), label
        return None

    for raw in response.split("\n"):
        line = raw.strip()
        if not line:
            continue
        parsed.lines += 1
        bullet = _BULLET.match(line)
        unbulleted = line[bullet.end() :] if bullet else None
        if line.casefold() == NO_SPANS or (unbulleted is not None and unbulleted.casefold() == NO_SPANS):
            parsed.no_spans_marker = True
            break
        hit = match(line)
        if hit is None and unbulleted:
            hit = match(unbulleted)
        if hit is None:
            parsed.dropped += 1
            continue
        start_char, end_char, label = hit
        parsed.spans.append((index.start_token[start_char], index.end_token[end_char], label))
        cursor = end_char
    return parsed


# -- constrained decoding --------------------------------------------------------------------


def candidate_lines(
    doc: Doc, labels: Sequence[str], cursor_token: int, max_span_tokens: int = 8
) -> List[Tuple[str, int, int]]:
    """Every line the format allows next when the previous span ended at ``cursor_token``.

    For each token span [s, e) with ``s >= cursor_token`` and ``e - s <= max_span_tokens``
    whose text can be written (which excludes spans of whitespace tokens only, and spans
    that start or end with whitespace or cross a line break), and for each label, the line
    exactly as ``format_response`` writes it for that span after that cursor, with
    ``" | k"`` when the span is the k-th token-aligned occurrence of its text (k > 1).
    Returns (line, start_token, end_token), sorted by start, end, then label order.
    """
    n = len(doc)
    if not isinstance(cursor_token, (int, numpy.integer)) or not 0 <= cursor_token <= n:
        raise ValueError(f"cursor_token must be a token index between 0 and {n}, got {cursor_token!r}")
    if not isinstance(max_span_tokens, (int, numpy.integer)) or max_span_tokens < 1:
        raise ValueError(f"max_span_tokens must be a positive integer, got {max_span_tokens!r}")
    labels = list(labels)
    for label in labels:
        _check_label(label)
    if cursor_token == n or not labels:
        return []
    index = TokenIndex(doc)
    text, starts, ends = index.text, index.starts, index.ends
    first = numpy.arange(cursor_token, n)
    # Any occurrence of a candidate's text is at most as long, in characters, as the longest
    # candidate, so counting token spans up to that length finds every earlier occurrence,
    # including ones tokenized into more tokens than max_span_tokens.
    last_candidate = numpy.minimum(first + max_span_tokens, n)
    longest = int((ends[last_candidate - 1] - starts[first]).max())
    last_counted = numpy.searchsorted(ends, starts[first] + longest, side="right")
    stop = numpy.maximum(last_candidate, last_counted).tolist()
    seen: Dict[str, int] = {}  # text -> aligned occurrences starting before the current s
    lines: List[Tuple[str, int, int]] = []
    for s, s_stop, s_last in zip(range(cursor_token, n), stop, last_candidate.tolist()):
        begin = int(starts[s])
        for e in range(s + 1, s_stop + 1):
            span_text = text[begin : int(ends[e - 1])]
            if e <= s_last and _writable_text(span_text):
                k = seen.get(span_text, 0) + 1
                lines.extend((_line(span_text, label, k), s, e) for label in labels)
            # Same start, different ends give texts of different lengths, so counting now
            # cannot affect another candidate starting at s.
            seen[span_text] = seen.get(span_text, 0) + 1
    return lines
