"""Token-aligned occurrences of strings in a Doc's text.

An occurrence is *token-aligned* when it starts where a token starts and ends where a token
ends. The SIFT response format (:mod:`spacy_seqlab.sift.response`) identifies a span by its
text and which aligned occurrence it is, counted from a cursor that only moves forward.
"""

from bisect import bisect_left, bisect_right
from typing import Dict, List, Optional

import numpy
from spacy.attrs import IDX, LENGTH
from spacy.tokens import Doc


class TokenIndex:
    """A Doc's text and its token boundaries as character offsets."""

    def __init__(self, doc: Doc) -> None:
        self.text = doc.text
        n = len(doc)
        offsets = doc.to_array([IDX, LENGTH]).astype(numpy.int64).reshape(n, 2)
        self.starts = offsets[:, 0]
        self.ends = offsets[:, 0] + offsets[:, 1]
        # spaCy tokens are never empty, so starts and ends are each strictly increasing
        # and these maps are one-to-one.
        self.start_token: Dict[int, int] = dict(zip(self.starts.tolist(), range(n)))
        self.end_token: Dict[int, int] = dict(zip(self.ends.tolist(), range(1, n + 1)))


class Occurrences:
    """Token-aligned occurrences of one string, found lazily from a cursor onwards.

    The cursor only moves forward within one reading or writing pass, so each string's
    part of the text is scanned (with ``str.find``) at most once per pass, however often it
    is looked up (a response may repeat a line many times).
    """

    __slots__ = ("index", "needle", "positions", "scanned", "done")

    def __init__(self, index: TokenIndex, needle: str) -> None:
        self.index = index
        self.needle = needle
        self.positions: List[int] = []  # aligned starts found so far, ascending
        self.scanned = 0  # the next character offset find() starts from
        self.done = False

    def _drop_before(self, cursor: int) -> None:
        """Forget occurrences before ``cursor``: the cursor never moves back."""
        if self.scanned < cursor:
            self.positions.clear()
            self.scanned = cursor
        else:
            del self.positions[: bisect_left(self.positions, cursor)]

    def _scan_one(self) -> bool:
        """Append the next aligned occurrence; False when there is none."""
        text, needle = self.index.text, self.needle
        starts, ends, width = self.index.start_token, self.index.end_token, len(needle)
        while not self.done:
            hit = text.find(needle, self.scanned)
            if hit < 0:
                self.done = True
                break
            self.scanned = hit + 1  # +1, not +width: aligned occurrences may overlap
            if hit in starts and hit + width in ends:
                self.positions.append(hit)
                return True
        return False

    def kth(self, cursor: int, k: int) -> Optional[int]:
        """Character offset of the k-th (1-based) aligned occurrence at/after ``cursor``."""
        if k > len(self.index.text):  # cannot exist; spares a scan to the end
            return None
        self._drop_before(cursor)
        while len(self.positions) < k and self._scan_one():
            pass
        return self.positions[k - 1] if len(self.positions) >= k else None

    def rank(self, cursor: int, position: int) -> int:
        """k of the aligned occurrence at ``position`` counted from ``cursor``."""
        self._drop_before(cursor)
        while (not self.positions or self.positions[-1] < position) and self._scan_one():
            pass
        return bisect_right(self.positions, position)
