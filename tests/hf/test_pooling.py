"""The pooling layer alone: piece vectors → one row per token, against a torch reference (values and gradients)."""

import numpy
import pytest
import torch

from spacy_seqlab.core.alignment import BatchAlignment
from spacy_seqlab.hf.pieces import PieceBatch
from spacy_seqlab.hf.pooling import PoolingSettings, build_pooling
from spacy_seqlab.hf.windows import PieceVectors


def _batch():
    """Three Docs: 4 tokens over 5 pieces (token 1 an orphan, piece 2 shared by tokens 2 and 3);
    2 tokens over 2 pieces; one token and no piece."""
    links = [(0, 0), (0, 1), (2, 2), (3, 2), (3, 3), (3, 4), (4, 5), (5, 5), (5, 6)]
    pair_token = numpy.array([t for t, _ in links])
    pair_piece = numpy.array([p for _, p in links])
    n_tokens = 7
    first = numpy.full(n_tokens, -1)
    last = numpy.full(n_tokens, -1)
    for t in range(n_tokens):
        mine = pair_piece[pair_token == t]
        if len(mine):
            first[t], last[t] = mine.min(), mine.max()
    alignment = BatchAlignment(
        piece_ids=numpy.arange(7),
        doc_pieces=numpy.array([5, 2, 0]),
        doc_tokens=numpy.array([4, 2, 1]),
        first=first,
        last=last,
        pair_token=pair_token,
        pair_piece=pair_piece,
    )
    return PieceBatch(**vars(alignment), prefix=[], suffix=[], pad_id=0)


def _reference(vectors, batch, pooling):
    rows = []
    for t in range(batch.n_tokens):
        mine = batch.pair_piece[batch.pair_token == t]
        if not len(mine):
            rows.append(vectors.new_zeros(vectors.shape[1]))
        elif pooling == "first":
            rows.append(vectors[int(mine.min())])
        elif pooling == "last":
            rows.append(vectors[int(mine.max())])
        else:
            rows.append(vectors[torch.as_tensor(mine)].mean(0))
    return torch.stack(rows)


@pytest.mark.parametrize("pooling", ["first", "last", "mean"])
def test_pooling_matches_a_torch_reference_forward_and_backward(pooling):
    batch = _batch()
    rng = numpy.random.default_rng(0)
    vectors = rng.normal(size=(batch.n_pieces, 3)).astype("float32")
    d_tokens = rng.normal(size=(batch.n_tokens, 3)).astype("float32")
    layer = build_pooling(PoolingSettings(pooling))
    outputs, backprop = layer(PieceVectors(vectors, batch), is_train=True)
    assert [y.shape for y in outputs] == [(4, 3), (2, 3), (1, 3)]
    assert all(y.dtype == numpy.float32 for y in outputs)
    assert not outputs[0][1].any() and not outputs[2].any()  # orphans: zero rows
    d_pieces = backprop([d_tokens[:4], d_tokens[4:6], d_tokens[6:]])
    assert d_pieces.batch is batch

    reference_in = torch.tensor(vectors, requires_grad=True)
    reference = _reference(reference_in, batch, pooling)
    reference.backward(torch.tensor(d_tokens))
    numpy.testing.assert_allclose(numpy.concatenate(outputs), reference.detach().numpy(), rtol=1e-6)
    numpy.testing.assert_allclose(d_pieces.vectors, reference_in.grad.numpy(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("pooling", ["first", "last", "mean"])
def test_pooling_of_an_empty_batch(pooling):
    alignment = BatchAlignment(*(numpy.zeros(0, dtype=numpy.int64) for _ in range(7)))
    batch = PieceBatch(**vars(alignment), prefix=[], suffix=[], pad_id=0)
    outputs, backprop = build_pooling(PoolingSettings(pooling))(
        PieceVectors(numpy.zeros((0, 3), "float32"), batch), True
    )
    assert outputs == []
    assert backprop([]).vectors.shape == (0, 3)


def test_unknown_pooling_is_named():
    with pytest.raises(ValueError, match="pooling must be one of first, last, mean"):
        PoolingSettings("max")
