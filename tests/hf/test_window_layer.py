"""The windows layer alone, around a stand-in transformer that reports what it saw, and around a real one."""

import numpy
import pytest
import spacy
from thinc.api import Model

from spacy_seqlab.core.alignment import BatchAlignment
from spacy_seqlab.core.windows import plan_windows
from spacy_seqlab.hf.backbone import build_hf_backbone
from spacy_seqlab.hf.model import hf_model_of
from spacy_seqlab.hf.pieces import PieceBatch, encode_pieces
from spacy_seqlab.hf.windows import PieceVectors, WindowSettings, plan_chunks, with_windows

nlp = spacy.blank("en")
PREFIX, SUFFIX, PAD = [1], [2], 0


def _batch(doc_pieces):
    """Pieces with ids 10, 11, ... (never a special or pad id); tokens are irrelevant to the windows."""
    doc_pieces = numpy.array(doc_pieces, dtype=numpy.int64)
    none = numpy.zeros(0, dtype=numpy.int64)
    alignment = BatchAlignment(
        10 + numpy.arange(doc_pieces.sum()), none, none, none, none, doc_pieces=doc_pieces, doc_tokens=doc_pieces * 0
    )
    return PieceBatch(**vars(alignment), prefix=PREFIX, suffix=SUFFIX, pad_id=PAD)


def _probe():
    """A stand-in transformer: the vector of each position is (its id, its column, its row's length);
    it records its inputs and the gradients it receives."""
    seen = {"inputs": [], "gradients": []}

    def forward(model, inputs, is_train):
        ids, mask, positions = inputs
        seen["inputs"].append((ids, mask, positions))
        columns = numpy.broadcast_to(numpy.arange(ids.shape[1]), ids.shape)
        lengths = numpy.broadcast_to(mask.sum(1, keepdims=True), ids.shape)
        rows = numpy.stack([ids, columns, lengths], axis=-1).reshape(-1, 3).astype("float32")[positions]

        def backprop(d_rows):
            seen["gradients"].append((positions, d_rows))
            return inputs

        return rows, backprop

    return Model("probe", forward), seen


@pytest.mark.parametrize(
    "settings", [dict(max_batch_tokens=4096, max_padding=1.0), dict(max_batch_tokens=40, max_padding=0.0)]
)
def test_every_piece_is_read_from_its_own_window_and_nothing_is_lost(settings):
    batch = _batch([0, 5, 30, 1, 17, 0])
    window = WindowSettings(window=8, stride=6, **settings)
    probe, seen = _probe()
    out, backprop = with_windows(probe, window)(batch, is_train=True)
    assert isinstance(out, PieceVectors) and out.batch is batch
    vectors = out.vectors
    assert vectors.shape == (batch.n_pieces, 3)
    numpy.testing.assert_array_equal(vectors[:, 0], batch.piece_ids)  # each piece is itself
    plan = plan_windows(batch.doc_pieces.tolist(), 8, 6)
    numpy.testing.assert_array_equal(vectors[:, 1], plan.piece_offset + len(PREFIX))  # from its owning window
    numpy.testing.assert_array_equal(vectors[:, 2], plan.lengths[plan.piece_window] + len(PREFIX) + len(SUFFIX))
    for ids, mask, _ in seen["inputs"]:
        assert (ids[:, 0] == PREFIX[0]).all() and (mask[:, 0] == 1).all()
        ends = mask.sum(1)
        assert (ids[numpy.arange(len(ids)), ends - 1] == SUFFIX[0]).all()
        assert (ids[mask == 0] == PAD).all()
        assert ids.size <= settings["max_batch_tokens"] or len(ids) == 1
    if settings["max_padding"] == 0.0:
        assert len(seen["inputs"]) > 1 and all((mask == 1).all() for _, mask, _ in seen["inputs"])
    # Gradients go back to the chunk, and the row, each piece was read from.
    d_vectors = numpy.random.default_rng(0).normal(size=vectors.shape).astype("float32")
    assert backprop(PieceVectors(d_vectors, batch)) is batch
    for (_, _, positions), (grad_positions, _) in zip(seen["inputs"], seen["gradients"]):
        assert grad_positions is positions
    # Rebuild the gradient per piece from what each chunk received.
    received = numpy.zeros_like(d_vectors)
    for (ids, _, positions), (_, d_rows) in zip(seen["inputs"], seen["gradients"]):
        pieces = ids.reshape(-1)[positions] - 10
        received[pieces] += d_rows
    numpy.testing.assert_array_equal(received, d_vectors)


def test_chunks_bound_padded_size_and_padding_share():
    batch = _batch([3, 9, 4, 40, 2, 7])
    for max_tokens, max_padding in [(20, 0.0), (64, 0.25), (4096, 1.0)]:
        chunks = plan_chunks(
            batch, WindowSettings(window=8, stride=4, max_batch_tokens=max_tokens, max_padding=max_padding)
        )
        assert sorted(numpy.concatenate([c.pieces for c in chunks]).tolist()) == list(range(batch.n_pieces))
        for chunk in chunks:
            assert chunk.input_ids.shape == chunk.attention_mask.shape
            rows, width = chunk.input_ids.shape
            assert rows == 1 or rows * width <= max_tokens
            assert rows == 1 or 1 - chunk.attention_mask.mean() <= max_padding + 1e-9


def test_empty_batch_runs_nothing(tiny_model_dir):
    model = build_hf_backbone(name=str(tiny_model_dir("bert")))
    model.initialize()
    windows = model.get_ref("windows")
    batch = encode_pieces([nlp(""), nlp("   ")], hf_model_of(model))
    out, backprop = windows(batch, is_train=True)
    assert out.vectors.shape == (0, 32)


def test_each_piece_is_read_from_a_run_on_its_window_alone(tiny_model_dir):
    model = build_hf_backbone(name=str(tiny_model_dir("llama")), window=24, stride=16)
    model.initialize()
    pieces, windows = model.get_ref("pieces"), model.get_ref("windows")
    doc = nlp(" ".join(f"w{i % 13}" for i in range(60)))
    batch = pieces.predict([doc])
    assert batch.n_pieces > 48
    vectors = windows.predict(batch).vectors
    plan = plan_windows([batch.n_pieces], 24, 16)
    for k in range(len(plan.start)):
        s, e = int(plan.start[k]), int(plan.end[k])
        # The same pieces as a batch of their own: one window, framed and run alone.
        alone = PieceBatch(**{**vars(batch), "piece_ids": batch.piece_ids[s:e], "doc_pieces": numpy.array([e - s])})
        expected = windows.predict(alone).vectors
        owned = numpy.flatnonzero(plan.piece_window == k)
        numpy.testing.assert_allclose(vectors[owned], expected[owned - s], atol=1e-5)


def test_window_settings_come_from_the_config_on_load(tiny_model_dir):
    model = build_hf_backbone(name=str(tiny_model_dir("bert")), max_batch_tokens=64, pooling="mean")
    model.initialize()
    restored = build_hf_backbone(name=str(tiny_model_dir("bert")), max_batch_tokens=128, pooling="mean")
    restored.from_bytes(model.to_bytes())
    assert restored.get_ref("windows").attrs["settings"].max_batch_tokens == 128
    assert restored.get_ref("pooling").attrs["settings"].pooling == "mean"


@pytest.mark.parametrize(
    "settings,message",
    [
        (dict(window=0), "window must be a positive"),
        (dict(window=8, stride=9), "stride must be between 1 and window"),
        (dict(max_batch_tokens=0), "max_batch_tokens must be a positive integer"),
        (dict(max_padding=True), "max_padding must be a share"),
    ],
)
def test_window_settings_are_checked(settings, message):
    with pytest.raises(ValueError, match=message):
        WindowSettings(**settings)


def test_a_long_stream_of_batches_meets_few_padded_widths():
    """Many random batches of new docs: chunk widths come from a small set (one compiled kernel
    each on CPU), never wider than the longest window, and padding stays within max_padding."""
    rng = numpy.random.default_rng(0)
    settings = WindowSettings()  # window 256, max_padding 0.2
    widths = set()
    for _ in range(300):
        batch = _batch(rng.integers(1, 400, size=rng.integers(1, 33)))
        for chunk in plan_chunks(batch, settings):
            rows, width = chunk.input_ids.shape
            widths.add(width)
            assert width <= settings.window + len(PREFIX) + len(SUFFIX)
            assert rows == 1 or rows * width <= settings.max_batch_tokens
            assert 1 - chunk.attention_mask.mean() <= settings.max_padding + 1e-9
    assert len(widths) <= 8 + 4 * 6  # each width up to 8, then a few sizes per doubling up to 258
