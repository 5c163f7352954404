"""Hypothesis strategies shared by test modules in several folders (``tests`` is on pytest's pythonpath)."""

from typing import List, Sequence, Tuple

from hypothesis import strategies as st

SpanTuple = Tuple[int, int, str]


@st.composite
def span_tuples(draw, n_tokens: int, labels: Sequence[str], max_length: int = 4, outside: int = 1) -> List[SpanTuple]:
    """Non-overlapping ``(start, end, label)`` spans over ``n_tokens`` tokens, drawn left to right: each stretch of
    1 to ``max_length`` tokens is a span of one of ``labels`` or, with odds ``outside`` in ``len(labels) + outside``,
    no span. Adjacent spans, of the same label or not, occur."""
    choices = list(labels) + [None] * outside
    spans, i = [], 0
    while i < n_tokens:
        end = min(n_tokens, i + draw(st.integers(1, max_length)))
        label = draw(st.sampled_from(choices))
        if label:
            spans.append((i, end, label))
        i = end
    return spans


@st.composite
def sized_span_tuples(draw, labels: Sequence[str], max_tokens: int, max_length: int = 4) -> Tuple[int, List[SpanTuple]]:
    """A number of tokens from 0 to ``max_tokens`` and :func:`span_tuples` over them."""
    n_tokens = draw(st.integers(0, max_tokens))
    return n_tokens, draw(span_tuples(n_tokens, labels, max_length))
