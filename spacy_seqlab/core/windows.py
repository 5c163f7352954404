"""Overlapping windows over long piece sequences, and which window each piece is read from.

A document with more pieces than ``window`` is covered by windows of ``window`` pieces
starting every ``stride`` pieces (the last one ends at the document's end). Every piece is
read from exactly one window: the one where it is most central. All windows have the same
length, so "most central" means "nearest window centre", and the owner switches from
window k to k+1 at the midpoint between their centres. Nothing is truncated.
"""

from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy


@dataclass
class WindowPlan:
    """Windows over a batch of documents.

    ``doc``, ``start``, ``end``: each window's document and piece range.
    ``piece_window`` / ``piece_offset``: for every piece of every document (documents
    concatenated in order), the window it is read from and its position in that window.
    """

    doc: numpy.ndarray
    start: numpy.ndarray
    end: numpy.ndarray
    piece_window: numpy.ndarray
    piece_offset: numpy.ndarray

    @property
    def lengths(self) -> numpy.ndarray:
        return self.end - self.start


def validate_window(window: int, stride: int) -> None:
    """Raise a ValueError unless 0 < stride <= window."""
    if not isinstance(window, int) or window < 1:
        raise ValueError(f"window must be a positive number of sub-words, got {window!r}")
    if not isinstance(stride, int) or not 0 < stride <= window:
        raise ValueError(f"stride must be between 1 and window ({window}) so that windows leave no gap, got {stride!r}")


def plan_windows(n_pieces: Sequence[int], window: int, stride: int) -> WindowPlan:
    """Cover each document's pieces with windows and pick each piece's owning window
    (numpy over the whole batch: no loop per document or piece)."""
    validate_window(window, stride)
    n = numpy.asarray(n_pieces, dtype=numpy.int64).reshape(-1)
    # Windows per document: one when it fits, else enough strides to reach its end.
    k = numpy.where(n <= window, 1, -(-(n - window) // stride) + 1) * (n > 0)
    doc = numpy.repeat(numpy.arange(len(n)), k)
    first_window = numpy.cumsum(k) - k
    index = numpy.arange(len(doc)) - first_window[doc]  # each window's rank in its document
    is_last = index == k[doc] - 1
    start = numpy.where(is_last, numpy.maximum(n[doc] - window, 0), index * stride)
    end = numpy.minimum(start + window, n[doc])
    # Owners switch at the midpoints between consecutive window centres. A document's cuts,
    # shifted by its first piece, lie between its first and last piece, so one sorted array
    # of cuts serves the batch: a piece's owner is its document's first window plus the number
    # of that document's cuts before it.
    piece_base = numpy.cumsum(n) - n
    has_next = ~is_last
    cuts = piece_base[doc[has_next]] + (start[has_next] + start[numpy.flatnonzero(has_next) + 1] + window - 1) // 2
    cuts_before = numpy.cumsum(k - (k > 0)) - (k - (k > 0))  # cuts of earlier documents
    piece_doc = numpy.repeat(numpy.arange(len(n)), n)
    position = numpy.arange(int(n.sum()))
    piece_window = first_window[piece_doc] + numpy.searchsorted(cuts, position, side="left") - cuts_before[piece_doc]
    piece_offset = position - piece_base[piece_doc] - start[piece_window]
    return WindowPlan(doc, start, end, piece_window, piece_offset)


def window_ranges(n_pieces: int, window: int, stride: int) -> List[Tuple[int, int]]:
    """The (start, end) ranges of the windows over one sequence of ``n_pieces``."""
    plan = plan_windows([n_pieces], window, stride)
    return list(zip(plan.start.tolist(), plan.end.tolist()))
