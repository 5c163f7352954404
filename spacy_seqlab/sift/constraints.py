"""Constrained decoding of SIFT responses: each step may only continue a response line the
format allows (a span of the input at or after the previous one, and a known label)."""

from typing import Any, Dict, List, Sequence

from spacy.tokens import Doc

from .response import NO_SPANS, candidate_lines

_END = -1  # trie key marking a complete line; its value is the span's end token
_NONE_END = -2  # the value for the "(none)" line, after which only the end of sequence may come


def newline_token(tokenizer: Any) -> int:
    """The id of a line break as the tokenizer writes it after some text.

    Probed after text because SentencePiece-style tokenizers put a word-start piece before
    a string that starts with a line break (``"\n"`` alone is two tokens there), while a
    response's line breaks always follow text. Raises a ValueError naming ``constrained``
    when a line break is not one token of its own.
    """
    for probe in ("a", ".", "x"):
        before = tokenizer(probe, add_special_tokens=False)["input_ids"]
        after = tokenizer(probe + "\n", add_special_tokens=False)["input_ids"]
        if len(after) == len(before) + 1 and after[: len(before)] == before:
            return int(after[-1])
    found = tokenizer("a\n", add_special_tokens=False)["input_ids"]
    raise ValueError(
        f"constrained = true needs a tokenizer that writes a line break as one token of its own; "
        f"{type(tokenizer).__name__} writes 'a\\n' as {found}: set constrained = false"
    )


class LineConstraint:
    """Allowed next tokens for one query while its response is generated.

    A trie over the token ids of every line the format allows next (see
    :func:`~spacy_seqlab.sift.response.candidate_lines`); after a complete line come a newline
    (and the next line, from the end of that span on) or the end-of-sequence token.
    """

    def __init__(self, doc: Doc, labels: Sequence[str], tokenizer: Any, *, max_span_tokens: int = 8) -> None:
        self.doc = doc
        self.labels = list(labels)
        self.tokenizer = tokenizer
        self.max_span_tokens = max_span_tokens
        self.newline = newline_token(tokenizer)
        self.eos = tokenizer.eos_token_id
        self._tries: Dict[int, dict] = {}

    def _lines_from(self, cursor: int) -> dict:
        """The trie of lines whose span starts at or after token ``cursor`` (plus "(none)" first)."""
        if cursor not in self._tries:
            lines = [
                (line, end) for line, _, end in candidate_lines(self.doc, self.labels, cursor, self.max_span_tokens)
            ]
            if cursor == 0:
                lines.append((NO_SPANS, _NONE_END))
            root: dict = {}
            if lines:
                encoded = self.tokenizer([line for line, _ in lines], add_special_tokens=False)["input_ids"]
                for ids, (_, end) in zip(encoded, lines):
                    node = root
                    for token_id in ids:
                        node = node.setdefault(token_id, {})
                    node[_END] = end
            self._tries[cursor] = root
        return self._tries[cursor]

    def allowed(self, generated: Sequence[int]) -> List[int]:
        """Token ids allowed after the ``generated`` response tokens."""
        cursor, node = 0, None
        for token_id in generated:
            if node is None:  # at the start of a line
                node = self._lines_from(cursor)
            if token_id == self.newline and node.get(_END, _NONE_END) != _NONE_END:
                cursor, node = node[_END], None
                continue
            node = node.get(token_id)
            if node is None:  # off the grammar (only if generation ignored the constraint): stop
                return [self.eos]
        if node is None:
            starts = set(self._lines_from(cursor)) - {_END}
            return sorted(starts | ({self.eos} if cursor > 0 else set())) or [self.eos]
        allowed = set(node) - {_END}
        if _END in node:
            allowed.add(self.eos)
            if node[_END] != _NONE_END:
                allowed.add(self.newline)
        return sorted(allowed) or [self.eos]
