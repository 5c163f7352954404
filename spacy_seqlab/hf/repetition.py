"""Sequence repetition: a decoder reads each window ``repeat + 1`` times and every piece is read from the last copy.

Kukić, Čuljak, Dukić, Tutek & Šnajder (the follow-up to arXiv 2401.14556) feed a causal decoder its
input repeated: under the ordinary causal mask a piece of the last copy attends to every piece of
the earlier copies, so it has seen the whole window, right context included, with no change to
attention. As in their code, the whole framed input repeats (special tokens such as BOS with each
copy) with no separator between copies. Here padding never sits between copies: a row is the
``repeat + 1`` copies of its framed window, then padding up to the chunk's width.

A window of ``W`` pieces with ``s`` special tokens therefore costs ``(repeat + 1) × (W + s)``
positions: batch planning and the model's position limit count that length.
"""

from typing import Any, Tuple

import numpy

from ..core.settings import check_int


def validate_repeat(repeat: Any) -> None:
    check_int("repeat", repeat, minimum=0)


def repeated_lengths(lengths: numpy.ndarray, n_special: int, repeat: int) -> numpy.ndarray:
    """Positions a window of ``lengths`` pieces takes with its special tokens, all copies included."""
    return (repeat + 1) * (lengths + n_special)


def last_copy_start(lengths: numpy.ndarray, n_special: int, repeat: int) -> numpy.ndarray:
    """Column where the last copy of a window of ``lengths`` pieces starts (its special tokens included)."""
    return repeat * (lengths + n_special)


def is_causal_decoder(config: Any) -> bool:
    """Whether a model config is a decoder-only LM (a masked LM or an encoder-decoder is not)."""
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    model_type = getattr(config, "model_type", None)
    return (
        not getattr(config, "is_encoder_decoder", False)
        and model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
        and model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES
    )


def check_repetition_applies(config: Any, repeat: int) -> None:
    """Repetition only gives context to a causal decoder; an encoder already sees both sides."""
    if repeat and not is_causal_decoder(config):
        raise ValueError(
            f"repeat = {repeat} on {getattr(config, 'model_type', None)!r}: sequence repetition is for decoder-only "
            "models (an encoder already attends both ways); set repeat = 0"
        )


def lay_out_windows(
    piece_ids: numpy.ndarray,
    prefix: numpy.ndarray,
    suffix: numpy.ndarray,
    pad_id: int,
    starts: numpy.ndarray,
    lengths: numpy.ndarray,
    width: int,
    repeat: int,
) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """Input ids and attention mask of windows ``[start, start + length)`` of ``piece_ids``, each framed by
    the special tokens, repeated ``repeat + 1`` times and padded on the right to ``width``
    (numpy over the whole chunk: no loop per window or piece)."""
    n_prefix, n_suffix = len(prefix), len(suffix)
    framed = (lengths + n_prefix + n_suffix)[:, None]
    column = numpy.arange(width)[None, :]
    used = column < (repeat + 1) * framed
    within = column % framed  # position within the copy
    offset = within - n_prefix  # position within the window's pieces
    is_piece = (offset >= 0) & (offset < lengths[:, None])
    source = numpy.clip(starts[:, None] + offset, 0, len(piece_ids) - 1)
    ids = numpy.where(is_piece, piece_ids[source], pad_id)
    if n_prefix:
        ids = numpy.where(within < n_prefix, prefix[numpy.minimum(within, n_prefix - 1)], ids)
    if n_suffix:
        after = offset - lengths[:, None]
        ids = numpy.where(after >= 0, suffix[numpy.clip(after, 0, n_suffix - 1)], ids)
    return numpy.where(used, ids, pad_id), used.astype(numpy.int64)
