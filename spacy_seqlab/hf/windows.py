"""Strided windows around the transformer layer: a :class:`~.pieces.PieceBatch` → one vector per piece.

Long Docs are covered by overlapping windows (:func:`spacy_seqlab.core.windows.plan_windows`);
every piece is read from the window where it is most central, so nothing is truncated. The
windows of a batch are sorted by length and padded once per chunk of at most
``max_batch_tokens`` padded pieces (:func:`spacy_seqlab.core.batching.chunk_size`), a chunk closing
early when more than ``max_padding`` of it would be padding. The inner layer runs once per chunk
and returns only the rows of the pieces read from it. With ``repeat`` a decoder reads each window
several times (:mod:`.repetition`); the pieces are read from the last copy and every length above
counts all copies.
"""

from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

import numpy
from thinc.api import Model
from thinc.types import Floats2d

from ..core.batching import chunk_shape
from ..core.settings import check_int, setting
from ..core.windows import plan_windows, validate_window
from .model import HFModel, find_hf_model, layer_settings
from .pieces import PieceBatch
from .repetition import check_repetition_applies, last_copy_start, lay_out_windows, repeated_lengths, validate_repeat


@layer_settings
@dataclass
class WindowSettings:
    """How pieces are cut into windows and windows batched into forward calls."""

    checked_on_load = ("repeat",)  # a model trained on repeated input expects it (see layer_settings)

    window: int = setting(256, "Pieces per window (special tokens not counted); longer Docs get several windows.")
    stride: int = setting(192, "Pieces between window starts; window - stride pieces of overlap.")
    max_batch_tokens: int = setting(4096, "Padded pieces per forward call; windows beyond it go to another call.")
    max_padding: float = setting(
        0.2,
        "Largest share of padding in a forward call; a shorter window that would exceed it starts the next call "
        "(1.0: fill calls up to max_batch_tokens).",
    )
    repeat: int = setting(
        0,
        "Decoders: extra copies of each window in its input, each piece read from the last copy so that it has seen "
        "its right context (0: off); a window then costs (repeat + 1) x (window + special tokens) positions.",
    )

    def __post_init__(self) -> None:
        validate_window(self.window, self.stride)
        check_int("max_batch_tokens", self.max_batch_tokens)
        share = self.max_padding
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0.0 <= share <= 1.0:
            raise ValueError(f"max_padding must be a share between 0.0 and 1.0, got {share!r}")
        validate_repeat(self.repeat)


@dataclass
class PieceVectors:
    """One vector per piece of a batch (rows in the batch's piece order), with the batch."""

    vectors: Floats2d  # (n_pieces, width)
    batch: PieceBatch


@dataclass
class Chunk:
    """Windows padded into one forward call, and which pieces are read from it."""

    input_ids: numpy.ndarray  # (windows, length)
    attention_mask: numpy.ndarray  # (windows, length)
    pieces: numpy.ndarray  # the batch's pieces read from this chunk, ascending
    positions: numpy.ndarray  # their rows in the flattened (windows × length) output


def with_windows(transformer: Model, settings: WindowSettings) -> Model[PieceBatch, PieceVectors]:
    """Run ``transformer`` ((ids, mask, positions) → one vector per position) over the windows of
    a piece batch. ``nO``, the vectors' width, is set at initialize (from the model's hidden size)."""
    return Model(
        "hf_windows", _forward, init=_init, layers=[transformer], dims={"nO": None}, attrs={"settings": settings}
    )


def _init(model: Model, X: Optional[PieceBatch] = None, Y: Optional[PieceVectors] = None) -> None:
    transformer = model.layers[0]
    transformer.initialize()
    hf_model = find_hf_model(transformer)
    if hf_model is not None:
        check_window_fits(hf_model, model.attrs["settings"])
        model.set_dim("nO", hf_model.hidden_size)
    elif transformer.has_dim("nO"):
        model.set_dim("nO", transformer.get_dim("nO"))


def check_window_fits(hf_model: HFModel, settings: WindowSettings) -> None:
    """A window plus its special tokens, times its copies, must fit the model's position embeddings."""
    check_repetition_applies(hf_model.base_model.config, settings.repeat)
    max_positions = hf_model.max_positions
    n_special = len(hf_model.prefix) + len(hf_model.suffix)
    copies = settings.repeat + 1
    if max_positions and copies * (settings.window + n_special) > max_positions:
        what = f"window = {settings.window} pieces plus {n_special} special tokens"
        if settings.repeat:
            what = f"repeat = {settings.repeat}: {copies} copies of {what}"
        raise ValueError(
            f"{what} exceeds the {max_positions} positions of {hf_model.settings.name!r}; set window <= "
            f"{max_positions // copies - n_special}" + (" or a smaller repeat" if settings.repeat else "")
        )


def _forward(model: Model, batch: PieceBatch, is_train: bool) -> Tuple[PieceVectors, Callable]:
    transformer = model.layers[0]
    settings: WindowSettings = model.attrs["settings"]
    hf_model = find_hf_model(transformer)
    if hf_model is not None:  # also after restoring a model under a config with another window
        check_window_fits(hf_model, settings)
    if batch.n_pieces == 0:  # empty or whitespace-only Docs: nothing to run
        return PieceVectors(model.ops.alloc2f(0, model.get_dim("nO")), batch), lambda d: batch
    chunks = plan_chunks(batch, settings)
    vectors: Optional[Floats2d] = None
    callbacks = []
    for chunk in chunks:
        ids, mask, positions = (model.ops.asarray(a) for a in (chunk.input_ids, chunk.attention_mask, chunk.positions))
        rows, backprop_rows = transformer((ids, mask, positions), is_train)
        if len(chunks) == 1:  # the rows are the pieces, in order
            vectors = rows
        else:
            if vectors is None:
                vectors = model.ops.alloc2f(batch.n_pieces, rows.shape[1], zeros=False)
            vectors[chunk.pieces] = rows
        callbacks.append(backprop_rows)

    def backprop(d_pieces: PieceVectors) -> PieceBatch:
        for chunk, backprop_rows in zip(chunks, callbacks):
            d_rows = d_pieces.vectors if len(chunks) == 1 else d_pieces.vectors[chunk.pieces]
            backprop_rows(model.ops.xp.ascontiguousarray(d_rows, dtype="float32"))
        return batch

    return PieceVectors(vectors, batch), backprop


def plan_chunks(batch: PieceBatch, settings: WindowSettings) -> List[Chunk]:
    """Windows over the batch, sorted by length and padded once per chunk (numpy over whole arrays)."""
    plan = plan_windows(batch.doc_pieces.tolist(), settings.window, settings.stride)
    n_prefix, n_special = len(batch.prefix), len(batch.prefix) + len(batch.suffix)
    lengths = repeated_lengths(plan.lengths, n_special, settings.repeat)
    read_from = last_copy_start(plan.lengths, n_special, settings.repeat) + n_prefix  # each window's first read row
    piece_base = numpy.cumsum(batch.doc_pieces) - batch.doc_pieces
    starts = piece_base[plan.doc] + plan.start  # each window's first piece in the batch
    order = numpy.argsort(-lengths, kind="stable")
    widest = int(repeated_lengths(numpy.int64(settings.window), n_special, settings.repeat))  # a full window
    window_chunk = numpy.zeros(len(order), dtype=numpy.int64)
    window_row = numpy.zeros(len(order), dtype=numpy.int64)  # flat output row of each window's first piece
    padded: List[Tuple[numpy.ndarray, numpy.ndarray]] = []
    i = 0
    while i < len(order):  # a loop per chunk
        # Widths from a few sizes (the longest window's at most): few distinct shapes over a long stream.
        size, width = chunk_shape(lengths[order[i:]], settings.max_batch_tokens, settings.max_padding, widest)
        members = order[i : i + size]
        padded.append(
            lay_out_windows(
                batch.piece_ids,
                numpy.asarray(batch.prefix, dtype=numpy.int64),
                numpy.asarray(batch.suffix, dtype=numpy.int64),
                batch.pad_id,
                starts[members],
                plan.lengths[members],
                width,
                settings.repeat,
            )
        )
        window_chunk[members] = len(padded) - 1
        window_row[members] = numpy.arange(size) * width + read_from[members]
        i += size
    piece_chunk = window_chunk[plan.piece_window]
    piece_position = window_row[plan.piece_window] + plan.piece_offset
    if len(padded) == 1:
        everything = numpy.arange(batch.n_pieces)
        return [Chunk(padded[0][0], padded[0][1], everything, piece_position)]
    by_chunk = numpy.argsort(piece_chunk, kind="stable")
    bounds = numpy.searchsorted(piece_chunk[by_chunk], numpy.arange(len(padded) + 1))
    chunks = []
    for c, (ids, mask) in enumerate(padded):
        pieces = by_chunk[bounds[c] : bounds[c + 1]]
        chunks.append(Chunk(ids, mask, pieces, piece_position[pieces]))
    return chunks
