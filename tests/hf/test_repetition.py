"""Sequence repetition (``repeat``): the layout of repeated windows, what it lets a causal decoder see,
that padding and windowing stay invisible, and the errors that name the setting."""

import numpy
import pytest
import spacy
import torch
from thinc.api import Model

from spacy_seqlab.core.alignment import BatchAlignment
from spacy_seqlab.core.serialization import ArtifactError
from spacy_seqlab.core.windows import plan_windows
from spacy_seqlab.hf.backbone import build_hf_backbone
from spacy_seqlab.hf.model import hf_model_of
from spacy_seqlab.hf.pieces import PieceBatch
from spacy_seqlab.hf.windows import WindowSettings, plan_chunks, with_windows

DECODERS = ["llama", "mistral", "qwen2", "qwen3"]
nlp = spacy.blank("en")


def _batch(doc_pieces, piece_ids=None, prefix=(1,), suffix=(2,), pad_id=0):
    """A piece batch with the given pieces per Doc (ids 10, 11, ... unless given); tokens are irrelevant here."""
    doc_pieces = numpy.asarray(doc_pieces, dtype=numpy.int64)
    if piece_ids is None:
        piece_ids = 10 + numpy.arange(doc_pieces.sum())
    none = numpy.zeros(0, dtype=numpy.int64)
    alignment = BatchAlignment(
        numpy.asarray(piece_ids, dtype=numpy.int64), none, none, none, none, doc_pieces=doc_pieces, doc_tokens=none
    )
    return PieceBatch(**vars(alignment), prefix=list(prefix), suffix=list(suffix), pad_id=pad_id)


def _backbone(model_dir, **settings):
    backbone = build_hf_backbone(name=str(model_dir), lora=None, **{"window": 32, "stride": 24, **settings})
    backbone.initialize()
    return backbone


@pytest.mark.parametrize("repeat", [1, 3])
def test_rows_hold_the_framed_window_repeated_then_padding_and_pieces_are_read_from_the_last_copy(repeat):
    batch = _batch([5, 30, 1, 17])
    settings = WindowSettings(window=8, stride=6, max_batch_tokens=100, max_padding=1.0, repeat=repeat)
    chunks = plan_chunks(batch, settings)
    assert len(chunks) > 1  # (repeat + 1) x 10 positions per window: max_batch_tokens splits the batch
    plan = plan_windows(batch.doc_pieces.tolist(), 8, 6)
    base = (numpy.cumsum(batch.doc_pieces) - batch.doc_pieces)[plan.doc]  # each window's Doc's first piece
    framed = {tuple([1, *range(10 + b + s, 10 + b + e), 2]) for b, s, e in zip(base, plan.start, plan.end)}
    read = numpy.full(batch.n_pieces, -1)
    for chunk in chunks:
        rows, width = chunk.input_ids.shape
        assert rows == 1 or rows * width <= settings.max_batch_tokens
        for ids, mask in zip(chunk.input_ids, chunk.attention_mask):
            used = int(mask.sum())
            assert mask[:used].all() and not mask[used:].any() and (ids[used:] == 0).all()  # padding only at the end
            copy = tuple(ids[: used // (repeat + 1)].tolist())
            assert copy in framed and ids[:used].tolist() == list(copy) * (repeat + 1)
        flat_ids = chunk.input_ids.reshape(-1)
        read[chunk.pieces] = flat_ids[chunk.positions]
        # Each read position lies in the last copy of its row: the same id one copy earlier, none later.
        column = chunk.positions % width
        row_used = chunk.attention_mask.sum(1)[chunk.positions // width]
        assert ((row_used - column) <= row_used // (repeat + 1)).all()
        assert (flat_ids[chunk.positions - row_used // (repeat + 1)] == flat_ids[chunk.positions]).all()
    numpy.testing.assert_array_equal(read, batch.piece_ids)  # every piece read once, as itself


def test_the_windows_layer_returns_one_vector_per_piece_with_repetition():
    def probe_forward(model, inputs, is_train):
        ids, mask, positions = inputs
        return ids.reshape(-1, 1)[positions].astype("float32"), lambda d: inputs

    batch = _batch([3, 40, 0, 9])
    out, _ = with_windows(Model("probe", probe_forward), WindowSettings(window=8, stride=4, repeat=2))(batch, False)
    numpy.testing.assert_array_equal(out.vectors[:, 0], batch.piece_ids)


@pytest.mark.parametrize("arch", DECODERS)
def test_with_repetition_the_first_token_sees_the_last_one_under_the_causal_mask(tiny_model_dir, arch):
    texts = ("The quick brown fox jumps over the lazy dog", "The quick brown fox jumps over the lazy cat")
    docs = [nlp(t) for t in texts]
    for repeat in (0, 1):
        backbone = _backbone(tiny_model_dir(arch), unmask="none", repeat=repeat)
        first = [backbone.predict([doc])[0][0] for doc in docs]
        change = float(numpy.abs(first[0] - first[1]).max())
        # Without repetition only float noise from the other sequence length (kernels differ in rounding).
        assert change > 1e-3 if repeat else change < 1e-5, change


def _next_token_task(rng, n, length=6, vocab=(20, 21, 22, 23)):
    """Piece ids and labels: the label of piece i is whether piece i + 1 is among the first half of ``vocab``
    (the last piece of a sequence has no label); only right context can tell."""
    ids = rng.choice(vocab, size=(n, length))
    labels = numpy.isin(ids[:, 1:], vocab[: len(vocab) // 2]).astype(numpy.int64)
    return ids, labels


def _accuracy_on_next_token_task(model_dir, repeat, steps=40):
    torch.manual_seed(0)
    backbone = _backbone(model_dir, unmask="none", repeat=repeat, window=8, stride=8)
    hf_model, settings = hf_model_of(backbone), backbone.get_ref("windows").attrs["settings"]
    head = torch.nn.Linear(hf_model.hidden_size, 2)
    optimizer = torch.optim.Adam([*hf_model.parameters(), *head.parameters()], lr=3e-3)
    rng = numpy.random.default_rng(0)

    def logits(ids):
        batch = _batch([ids.shape[1]] * len(ids), ids.reshape(-1), hf_model.prefix, hf_model.suffix, hf_model.pad_id)
        (chunk,) = plan_chunks(batch, settings)
        tensors = [torch.as_tensor(a) for a in (chunk.input_ids, chunk.attention_mask, chunk.positions)]
        return head(hf_model(*tensors)).reshape(len(ids), ids.shape[1], 2)[:, :-1]

    hf_model.train()
    for _ in range(steps):
        ids, labels = _next_token_task(rng, 32)
        loss = torch.nn.functional.cross_entropy(logits(ids).reshape(-1, 2), torch.as_tensor(labels).reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    hf_model.eval()
    ids, labels = _next_token_task(numpy.random.default_rng(1), 256)
    with torch.no_grad():
        return float((logits(ids).argmax(-1).numpy() == labels).mean())


def test_a_causal_decoder_learns_a_next_token_task_with_repetition_and_not_without(tiny_model_dir):
    accuracy = {repeat: _accuracy_on_next_token_task(tiny_model_dir("llama"), repeat) for repeat in (0, 1)}
    assert accuracy[1] > 0.9, accuracy
    assert accuracy[0] < 0.65, accuracy  # chance is 0.5


@pytest.mark.parametrize("arch", ["llama", "qwen3"])
def test_padding_is_invisible_with_repetition_left_and_right(tiny_model_dir, arch):
    backbone = _backbone(tiny_model_dir(arch), unmask="none", repeat=2, max_padding=1.0)
    docs = [nlp("the dog"), nlp("Alice met Bob at the Acme Corporation headquarters in Paris last Tuesday"), nlp("a")]
    together = backbone.predict(docs)  # one chunk: the short Docs are padded on the right
    for doc, expected in zip(docs, together):
        numpy.testing.assert_allclose(backbone.predict([doc])[0], expected, atol=1e-4)
    # Left padding of a repeated row, with positions that start at its first real token.
    hf_model = hf_model_of(backbone)
    batch = backbone.get_ref("pieces").predict([docs[0]])
    (chunk,) = plan_chunks(batch, backbone.get_ref("windows").attrs["settings"])
    ids, mask = torch.as_tensor(chunk.input_ids), torch.as_tensor(chunk.attention_mask)
    n_pad = 5
    left_ids = torch.cat([torch.full((1, n_pad), hf_model.pad_id), ids], dim=1)
    left_mask = torch.cat([torch.zeros(1, n_pad, dtype=mask.dtype), mask], dim=1)
    with torch.no_grad():
        alone = hf_model.transformer(input_ids=ids, attention_mask=mask).last_hidden_state[0]
        left = hf_model.transformer(
            input_ids=left_ids, attention_mask=left_mask, position_ids=(left_mask.cumsum(1) - 1).clamp(min=0)
        ).last_hidden_state[0, n_pad:]
    torch.testing.assert_close(
        left[torch.as_tensor(chunk.positions)], alone[torch.as_tensor(chunk.positions)], atol=1e-4, rtol=0
    )


def test_long_documents_are_windowed_with_repetition_without_losing_a_token(tiny_model_dir):
    backbone = _backbone(tiny_model_dir("qwen2"), repeat=1, window=16, stride=10)
    pieces, windows = backbone.get_ref("pieces"), backbone.get_ref("windows")
    doc = nlp(" ".join(f"w{i % 13}" for i in range(50)))
    assert len(backbone.predict([doc])[0]) == len(doc)
    batch = pieces.predict([doc])
    vectors = windows.predict(batch).vectors
    plan = plan_windows([batch.n_pieces], 16, 10)
    assert len(plan.start) > 2
    for k, (s, e) in enumerate(zip(plan.start.tolist(), plan.end.tolist())):
        # The window's pieces as a batch of their own: one window, repeated and run alone.
        alone = PieceBatch(**{**vars(batch), "piece_ids": batch.piece_ids[s:e], "doc_pieces": numpy.array([e - s])})
        owned = numpy.flatnonzero(plan.piece_window == k)
        numpy.testing.assert_allclose(vectors[owned], windows.predict(alone).vectors[owned - s], atol=1e-5)


@pytest.mark.parametrize(
    "repeat,message", [(-1, "repeat must be a non-negative integer"), (1.5, "repeat"), (True, "repeat")]
)
def test_bad_repeat_is_refused_naming_it(repeat, message):
    with pytest.raises(ValueError, match=message):
        WindowSettings(repeat=repeat)


def test_repetition_over_an_encoder_is_refused_naming_repeat(tiny_model_dir):
    backbone = build_hf_backbone(name=str(tiny_model_dir("bert")), repeat=1)
    with pytest.raises(ValueError, match="repeat = 1 on 'bert'.*decoder-only"):
        backbone.initialize()


def test_repeated_windows_must_fit_the_model_positions(tiny_model_dir):
    # 2 x (256 pieces + BOS) = 514 positions > the tiny model's 512.
    backbone = build_hf_backbone(name=str(tiny_model_dir("llama")), repeat=1, window=256, stride=128)
    with pytest.raises(ValueError, match="repeat = 1: 2 copies of window = 256.*512 positions.*window <= 255"):
        backbone.initialize()


def test_repeat_is_checked_when_a_saved_backbone_is_restored(tiny_model_dir):
    saved = _backbone(tiny_model_dir("llama"), repeat=1).to_bytes()
    build_hf_backbone(name=str(tiny_model_dir("llama")), lora=None, repeat=1).from_bytes(saved)
    with pytest.raises(ArtifactError, match="trained with repeat = 1 but the config says 0"):
        build_hf_backbone(name=str(tiny_model_dir("llama")), lora=None, repeat=0).from_bytes(saved)
