"""Batch planning: how many length-sorted sequences go into one padded forward call."""

from typing import List, Optional, Sequence, Tuple

import numpy

# Padded widths above 8 are rounded up to one of a few sizes per doubling (10, 12, 14, 16, 20, 24,
# 28, 32, 40, ...: under 20 % padding added), so that a long stream of new Docs meets few tensor
# shapes: on CPU, oneDNN keeps a compiled kernel per shape, and their memory grew with every new width.
SHAPES_PER_DOUBLING = 4
EXACT_UP_TO = 8


def chunk_size(sorted_lengths: numpy.ndarray, max_tokens: int, max_padding: float, width: Optional[int] = None) -> int:
    """How many of the (longest-first) lengths go into the next chunk padded to ``width`` (by
    default the longest): at least one, at most ``max_tokens`` padded positions, and at most
    ``max_padding`` of them padding.

    Sorting alone does not bound padding: a batch of short texts fits one chunk whose width is
    the longest text's, and on CPU the padded positions cost as much as real ones.
    """
    width = int(sorted_lengths[0]) if width is None else width
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


def bucket_width(width: int, limit: int) -> int:
    """``width`` rounded up to the next of :data:`SHAPES_PER_DOUBLING` sizes per doubling, never
    past ``limit`` (the widest a sequence may be) unless ``width`` itself is."""
    if width <= EXACT_UP_TO:
        return width
    step = max(1, (1 << (int(width - 1).bit_length() - 1)) // SHAPES_PER_DOUBLING)
    return max(width, min(-(-width // step) * step, limit))


def chunk_shape(sorted_lengths: numpy.ndarray, max_tokens: int, max_padding: float, limit: int) -> Tuple[int, int]:
    """(sequences, padded width) of the next chunk: the longest length rounded up by
    :func:`bucket_width`, then :func:`chunk_size` at that width, so that the rounding counts in
    ``max_padding`` and ``max_tokens``. Where one sequence alone would exceed them once rounded
    (``max_padding`` under 0.2), the width is not rounded."""
    longest = int(sorted_lengths[0])
    width = bucket_width(longest, limit)
    if width > max(longest, max_tokens) or 1.0 - longest / width > max_padding + 1e-9:
        width = longest
    return chunk_size(sorted_lengths, max_tokens, max_padding, width), width
