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
    """Cover each document's pieces with windows and pick each piece's owning window."""
    validate_window(window, stride)
    docs, starts, ends, owners, offsets = [], [], [], [], []
    n_windows = 0
    for i, n in enumerate(n_pieces):  # a loop per document, not per piece
        if n == 0:
            continue
        k = 1 if n <= window else -(-(n - window) // stride) + 1
        doc_starts = numpy.arange(k, dtype=numpy.int64) * stride
        doc_starts[-1] = max(n - window, 0)
        doc_ends = numpy.minimum(doc_starts + window, n)
        # Midpoints between consecutive window centres.
        cuts = (doc_starts[:-1] + doc_starts[1:] + window - 1) // 2
        owner = numpy.searchsorted(cuts, numpy.arange(n), side="left")
        docs.append(numpy.full(k, i, dtype=numpy.int64))
        starts.append(doc_starts)
        ends.append(doc_ends)
        owners.append(owner + n_windows)
        offsets.append(numpy.arange(n) - doc_starts[owner])
        n_windows += k
    if not docs:
        empty = numpy.zeros(0, dtype=numpy.int64)
        return WindowPlan(empty, empty, empty, empty, empty)
    return WindowPlan(*(numpy.concatenate(parts) for parts in (docs, starts, ends, owners, offsets)))


def window_ranges(n_pieces: int, window: int, stride: int) -> List[Tuple[int, int]]:
    """The (start, end) ranges of the windows over one sequence of ``n_pieces``."""
    plan = plan_windows([n_pieces], window, stride)
    return list(zip(plan.start.tolist(), plan.end.tolist()))
