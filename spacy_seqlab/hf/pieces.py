"""Piece encoding: Docs → a :class:`PieceBatch`, the sub-word pieces of a batch aligned to its tokens.

Each Doc's text is tokenized whole by the model's fast tokenizer and aligned to its spaCy tokens
(:mod:`spacy_seqlab.core.alignment`); the batch concatenates every Doc's arrays, with indices
shifted to the batch, so later layers work on whole arrays: no loop per piece or token.
"""

from dataclasses import dataclass
from typing import Callable, List, Sequence, Tuple

import numpy
from spacy.tokens import Doc
from thinc.api import Model
from thinc.types import Ints1d

from ..core.alignment import DocAlignment, align_docs
from .model import HFModel


@dataclass
class PieceBatch:
    """The pieces of a batch of Docs and how they map to its tokens (all indices batch-wide).

    ``first``/``last``: each token's first/last piece, -1 for a token without pieces (an
    orphan). ``pair_token[i]``/``pair_piece[i]``: one (token, piece) link, sorted by token.
    """

    piece_ids: Ints1d  # (n_pieces,) vocabulary ids, Docs concatenated
    doc_pieces: Ints1d  # (n_docs,) pieces per Doc
    doc_tokens: Ints1d  # (n_docs,) tokens per Doc
    first: Ints1d  # (n_tokens,)
    last: Ints1d  # (n_tokens,)
    pair_token: Ints1d  # (n_links,)
    pair_piece: Ints1d  # (n_links,)
    prefix: List[int]  # special tokens before each window's pieces (BOS/CLS)
    suffix: List[int]  # ... and after them (EOS/SEP)
    pad_id: int

    @property
    def n_pieces(self) -> int:
        return len(self.piece_ids)

    @property
    def n_tokens(self) -> int:
        return len(self.first)


def build_piece_encoder(hf_model: HFModel) -> Model[List[Doc], PieceBatch]:
    """Docs → :class:`PieceBatch` with the tokenizer of ``hf_model``.

    The model is shared with the transformer layer, which saves and restores it: thinc refs
    only point into a layer's own subtree, so this layer holds the model as an attribute.
    """
    return Model("hf_pieces", _forward, attrs={"hf_model": hf_model})


def _forward(model: Model, docs: List[Doc], is_train: bool) -> Tuple[PieceBatch, Callable]:
    hf_model: HFModel = model.attrs["hf_model"]
    hf_model.require_loaded()
    batch = concatenate(align_docs(docs, hf_model.tokenizer), hf_model.prefix, hf_model.suffix, hf_model.pad_id)
    return batch, lambda d_batch: []


def concatenate(alignments: Sequence[DocAlignment], prefix: List[int], suffix: List[int], pad_id: int) -> PieceBatch:
    """One :class:`PieceBatch` from the Docs' alignments, indices shifted to the batch."""
    doc_pieces = numpy.array([a.n_pieces for a in alignments], dtype=numpy.int64)
    doc_tokens = numpy.array([a.n_tokens for a in alignments], dtype=numpy.int64)
    doc_links = numpy.array([len(a.pair_token) for a in alignments], dtype=numpy.int64)
    piece_base = numpy.cumsum(doc_pieces) - doc_pieces
    token_base = numpy.cumsum(doc_tokens) - doc_tokens

    def joined(name: str) -> numpy.ndarray:
        parts = [getattr(a, name) for a in alignments]
        return numpy.concatenate(parts).astype(numpy.int64, copy=False) if parts else numpy.zeros(0, numpy.int64)

    first, last = joined("first"), joined("last")
    token_shift = numpy.repeat(piece_base, doc_tokens)
    first = numpy.where(first >= 0, first + token_shift, -1)
    last = numpy.where(last >= 0, last + token_shift, -1)
    return PieceBatch(
        piece_ids=joined("piece_ids"),
        doc_pieces=doc_pieces,
        doc_tokens=doc_tokens,
        first=first,
        last=last,
        pair_token=joined("pair_token") + numpy.repeat(token_base, doc_links),
        pair_piece=joined("pair_piece") + numpy.repeat(piece_base, doc_links),
        prefix=list(prefix),
        suffix=list(suffix),
        pad_id=int(pad_id),
    )
