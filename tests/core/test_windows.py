import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spacy_seqlab.core.windows import plan_windows


def _centrality(p, start, end):
    return min(p - start, end - 1 - p)


@settings(max_examples=300, deadline=None)
@given(
    n_pieces=st.lists(st.integers(0, 300), min_size=0, max_size=4),
    window=st.integers(1, 64),
    stride_frac=st.floats(0.01, 1.0),
)
def test_every_piece_is_read_once_from_its_most_central_window(n_pieces, window, stride_frac):
    stride = max(1, int(window * stride_frac))
    plan = plan_windows(n_pieces, window, stride)
    assert len(plan.piece_window) == sum(n_pieces)
    base = 0
    for doc, n in enumerate(n_pieces):
        mine = numpy.flatnonzero(plan.doc == doc)
        if n == 0:
            assert len(mine) == 0
            continue
        starts, ends = plan.start[mine], plan.end[mine]
        # Windows cover the document, have the configured length, and the last ends at the end.
        assert starts[0] == 0 and ends[-1] == n
        assert (ends - starts == min(window, n)).all()
        covered = numpy.zeros(n, dtype=bool)
        for s, e in zip(starts, ends):
            covered[s:e] = True
        assert covered.all()
        for p in range(n):
            w = plan.piece_window[base + p]
            assert plan.doc[w] == doc
            s, e = plan.start[w], plan.end[w]
            assert s <= p < e and plan.piece_offset[base + p] == p - s
            best = max(_centrality(p, s2, e2) for s2, e2 in zip(starts, ends) if s2 <= p < e2)
            assert _centrality(p, s, e) == best
        base += n


def test_short_document_is_one_window():
    plan = plan_windows([5], window=8, stride=4)
    assert plan.start.tolist() == [0] and plan.end.tolist() == [5]
    assert plan.piece_offset.tolist() == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("window,stride", [(0, 1), (8, 0), (8, 9), (8, 2.5)])
def test_invalid_window_settings_are_named(window, stride):
    with pytest.raises(ValueError, match="window|stride"):
        plan_windows([10], window, stride)
