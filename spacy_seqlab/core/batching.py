"""Batch planning: how many length-sorted sequences go into one padded forward call."""

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
