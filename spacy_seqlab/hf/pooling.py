"""Pooling: one vector per piece → one vector per spaCy token, split by Doc.

``first`` and ``last`` read the token's first or last piece (``last`` suits causal decoders,
whose last piece has seen the whole word); ``mean`` averages its pieces. A token without
pieces (whitespace a tokenizer drops) gets a zero vector, so every token has one row.
Forward and backward are thinc ops over whole arrays (gather, reduce, scatter-add).
"""

from dataclasses import dataclass
from typing import Callable, List, Tuple

from thinc.api import Model
from thinc.types import Floats2d

from ..core.settings import check_choice, setting
from .model import layer_settings
from .windows import PieceVectors

POOLINGS = ("first", "last", "mean")


@layer_settings
@dataclass
class PoolingSettings:
    """How a token's vector is read from its pieces."""

    pooling: str = setting("first", "Piece vectors → token vector: 'first', 'last' (for causal decoders) or 'mean'.")

    def __post_init__(self) -> None:
        check_choice("pooling", self.pooling, POOLINGS)


def build_pooling(settings: PoolingSettings) -> Model[PieceVectors, List[Floats2d]]:
    return Model("hf_pooling", _forward, attrs={"settings": settings})


def _forward(model: Model, X: PieceVectors, is_train: bool) -> Tuple[List[Floats2d], Callable]:
    ops, xp = model.ops, model.ops.xp
    batch, vectors = X.batch, X.vectors
    width = vectors.shape[1]
    if model.attrs["settings"].pooling == "mean":
        links = ops.asarray1i(batch.pair_piece)
        counts = ops.asarray1i(xp.bincount(xp.asarray(batch.pair_token), minlength=batch.n_tokens))
        tokens = ops.reduce_mean(vectors[links], counts) if len(links) else ops.alloc2f(batch.n_tokens, width)

        def backprop_links(d_tokens: Floats2d) -> Floats2d:
            d_vectors = ops.alloc2f(*vectors.shape)
            if len(links):
                ops.scatter_add(d_vectors, links, ops.backprop_reduce_mean(d_tokens, counts))
            return d_vectors

    else:
        index = ops.asarray1i(batch.first if model.attrs["settings"].pooling == "first" else batch.last)
        covered = index >= 0
        all_covered = bool(covered.all())
        if all_covered:
            tokens = vectors[index]
        else:
            tokens = ops.alloc2f(batch.n_tokens, width)
            tokens[covered] = vectors[index[covered]]

        def backprop_links(d_tokens: Floats2d) -> Floats2d:
            d_vectors = ops.alloc2f(*vectors.shape)
            if all_covered:
                ops.scatter_add(d_vectors, index, d_tokens)
            else:
                ops.scatter_add(d_vectors, index[covered], xp.ascontiguousarray(d_tokens[covered]))
            return d_vectors

    bounds = xp.cumsum(xp.asarray(batch.doc_tokens)).tolist()
    outputs = [tokens[start:end] for start, end in zip([0] + bounds[:-1], bounds)]

    def backprop(d_outputs: List[Floats2d]) -> PieceVectors:
        d_tokens = xp.concatenate(d_outputs) if d_outputs else ops.alloc2f(0, width)
        return PieceVectors(backprop_links(xp.ascontiguousarray(d_tokens, dtype="float32")), batch)

    return outputs, backprop
