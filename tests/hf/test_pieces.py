"""The piece encoder alone: Docs → one batch of pieces aligned to tokens, with batch-wide indices."""

import numpy
import pytest
import spacy

from spacy_seqlab.core.alignment import align_docs
from spacy_seqlab.hf.model import HFModel, ModelSettings, hf_model_of
from spacy_seqlab.hf.pieces import PieceBatch, build_piece_encoder
from spacy_seqlab.hf.transformer import build_transformer

nlp = spacy.blank("en")
TEXTS = ["Alice can't go to São Paulo.", "", "   ", "Emoji 👩‍👩‍👧 and مرحبا\tand\n\nnew lines", "x"]


@pytest.mark.parametrize("arch", ["bert", "llama"])
def test_batch_is_the_docs_alignments_end_to_end(tiny_model_dir, arch):
    transformer = build_transformer(HFModel(ModelSettings(name=str(tiny_model_dir(arch)))))
    transformer.initialize()
    hf_model = hf_model_of(transformer)
    docs = [nlp(text) for text in TEXTS]
    batch, backprop = build_piece_encoder(hf_model)(docs, is_train=True)
    assert isinstance(batch, PieceBatch) and backprop(batch) == []
    assert (batch.prefix, batch.suffix, batch.pad_id) == (hf_model.prefix, hf_model.suffix, hf_model.pad_id)
    singles = align_docs(docs, hf_model.tokenizer)
    assert batch.doc_pieces.tolist() == [a.n_pieces for a in singles]
    assert batch.doc_tokens.tolist() == [len(doc) for doc in docs]
    piece_base = numpy.cumsum(batch.doc_pieces) - batch.doc_pieces
    token_base = numpy.cumsum(batch.doc_tokens) - batch.doc_tokens
    numpy.testing.assert_array_equal(batch.piece_ids, numpy.concatenate([a.piece_ids for a in singles]))
    for name in ("first", "last"):
        shifted = [numpy.where(getattr(a, name) >= 0, getattr(a, name) + p, -1) for a, p in zip(singles, piece_base)]
        numpy.testing.assert_array_equal(getattr(batch, name), numpy.concatenate(shifted))
    numpy.testing.assert_array_equal(
        batch.pair_token, numpy.concatenate([a.pair_token + t for a, t in zip(singles, token_base)])
    )
    numpy.testing.assert_array_equal(
        batch.pair_piece, numpy.concatenate([a.pair_piece + p for a, p in zip(singles, piece_base)])
    )
    # Each Doc alone gives the same alignment as within the batch.
    for doc, single in zip(docs, singles):
        (alone,) = align_docs([doc], hf_model.tokenizer)
        assert alone.first.tolist() == single.first.tolist() and alone.pair_piece.tolist() == single.pair_piece.tolist()


def test_no_docs_and_no_model(tiny_model_dir):
    transformer = build_transformer(HFModel(ModelSettings(name=str(tiny_model_dir("bert")))))
    encoder = build_piece_encoder(hf_model_of(transformer))
    with pytest.raises(RuntimeError, match="initialize"):
        encoder.predict([nlp("x")])
    transformer.initialize()
    batch = encoder.predict([])
    assert batch.n_pieces == batch.n_tokens == 0 and len(batch.doc_pieces) == 0
