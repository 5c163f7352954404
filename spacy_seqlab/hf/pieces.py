"""Piece encoding: Docs → a :class:`PieceBatch`, the sub-word pieces of a batch aligned to its tokens.

The Docs' texts are tokenized by the model's fast tokenizer in one call and aligned to their
spaCy tokens together (:func:`spacy_seqlab.core.alignment.align_batch`): piece and token
indices are batch-wide, so later layers work on whole arrays, with no loop per piece or token.
"""

from dataclasses import dataclass
from typing import Callable, List, Sequence, Tuple

import numpy
from spacy.tokens import Doc
from thinc.api import Model

from ..core.alignment import BatchAlignment, align_batch
from .model import HFModel


@dataclass
class PieceBatch(BatchAlignment):
    """A batch's pieces and their alignment to its tokens, with what frames a window of them.

    ``first``/``last``: each token's first/last piece, -1 for a token without pieces (an
    orphan). ``pair_token[i]``/``pair_piece[i]``: one (token, piece) link, sorted by token.
    """

    prefix: List[int]  # special tokens before each window's pieces (BOS/CLS)
    suffix: List[int]  # ... and after them (EOS/SEP)
    pad_id: int


def build_piece_encoder(hf_model: HFModel) -> Model[List[Doc], PieceBatch]:
    """Docs → :class:`PieceBatch` with the tokenizer of ``hf_model``.

    The model is shared with the transformer layer, which saves and restores it: thinc refs
    only point into a layer's own subtree, so this layer holds the model as an attribute.
    """
    return Model("hf_pieces", _forward, attrs={"hf_model": hf_model})


def _forward(model: Model, docs: List[Doc], is_train: bool) -> Tuple[PieceBatch, Callable]:
    hf_model: HFModel = model.attrs["hf_model"]
    hf_model.require_loaded()
    batch = encode_pieces(docs, hf_model)
    return batch, lambda d_batch: []


def encode_pieces(docs: List[Doc], hf_model: HFModel) -> PieceBatch:
    """The :class:`PieceBatch` of ``docs`` for a loaded model."""
    alignment = align_batch(docs, hf_model.tokenizer)
    return PieceBatch(**vars(alignment), prefix=hf_model.prefix, suffix=hf_model.suffix, pad_id=hf_model.pad_id)


def count_pieces(docs: Sequence[Doc], hf_model: HFModel) -> numpy.ndarray:
    """Sub-word pieces per Doc (special tokens not counted), from one batched tokenizer call without
    offsets: what each Doc costs in a forward call."""
    hf_model.require_loaded()
    if not docs:
        return numpy.zeros(0, dtype=numpy.int64)
    encoded = hf_model.tokenizer(
        [doc.text for doc in docs],
        add_special_tokens=False,
        return_attention_mask=False,
        return_token_type_ids=False,
        verbose=False,
    )
    return numpy.fromiter(map(len, encoded["input_ids"]), dtype=numpy.int64, count=len(docs))
