"""Batch planning: how many length-sorted sequences go into one padded forward call."""

from typing import List, Sequence

import numpy


def chunk_size(sorted_lengths: numpy.ndarray, max_tokens: int, max_padding: float) -> int:
    """How many of the (longest-first) lengths go into the next padded chunk: at least one,
    at most ``max_tokens`` padded positions, and at most ``max_padding`` of them padding.

    Sorting alone does not bound padding: a batch of short texts fits one chunk whose width is
    the longest text's, and on CPU the padded positions cost as much as real ones.
    """
    width = int(sorted_lengths[0])
    sorted_lengths = sorted_lengths[: max(1, max_tokens // width)]
    sizes = numpy.arange(1, len(sorted_lengths) + 1)
    padding = 1.0 - numpy.cumsum(sorted_lengths) / (sizes * width)
    fits = (sizes * width <= max_tokens) & (padding <= max_padding + 1e-9)
    # Padding only grows along the sorted lengths, so the chunk is the leading run that fits.
    return max(1, int(numpy.argmin(fits)) if not fits.all() else len(fits))


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> List[numpy.ndarray]:
    """Indices of ``lengths`` in batches of ``batch_size``, each batch of similar lengths.

    A component reads several of spaCy's batches ahead and predicts them in this order, so that
    each forward call pads short texts to a short width (the Docs are still returned in order).
    """
    order = numpy.argsort(numpy.asarray(lengths, dtype=numpy.int64), kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), max(1, batch_size))]
