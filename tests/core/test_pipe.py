"""LabeledPipe: one table of named parts for disk and bytes, one guard for reading them, the
finite-loss check of get_loss."""

import numpy
import pytest
import spacy
import srsly
from spacy.tokens import Doc
from spacy.training import Example
from thinc.api import Linear

from spacy_seqlab.core.pipe import LabeledPipe, Part
from spacy_seqlab.core.serialization import ALLOW_UNVERIFIED_ENV, CHECKSUMS_FILE, CHECKSUMS_KEY, ArtifactError

VOCAB = spacy.blank("en").vocab


class Toy(LabeledPipe):
    """A component with one part of its own, ``notes.json``."""

    def __init__(self, name: str = "toy") -> None:
        self.vocab, self.name = VOCAB, name
        self.model = Linear(3, 2)
        self.model.initialize()
        self.cfg = {"labels": ["A", "B"], "target": "ents"}
        self.notes = []

    def _extra_parts(self):
        return {
            "notes.json": Part(
                lambda: srsly.json_dumps(self.notes), lambda data: setattr(self, "notes", srsly.json_loads(data))
            )
        }

    def compute_loss(self, examples, scores):
        return scores, None


def _saved(tmp_path):
    toy = Toy()
    toy.notes = ["kept"]
    toy.model.set_param("W", numpy.arange(6, dtype="f").reshape(3, 2))
    toy.to_disk(tmp_path / "toy", exclude=["vocab"])
    return toy


def test_every_part_is_saved_and_restored_through_disk_and_bytes(tmp_path):
    toy = _saved(tmp_path)
    assert sorted(p.name for p in (tmp_path / "toy").iterdir()) == ["cfg", CHECKSUMS_FILE, "model", "notes.json"]
    loaded = Toy().from_disk(tmp_path / "toy", exclude=["vocab"])
    assert loaded.notes == ["kept"] and loaded.labels == ("A", "B")
    numpy.testing.assert_array_equal(loaded.model.get_param("W"), toy.model.get_param("W"))
    msg = srsly.msgpack_loads(toy.to_bytes())
    assert sorted(msg) == ["cfg", CHECKSUMS_KEY, "model", "notes.json", "vocab"]
    copy = Toy().from_bytes(toy.to_bytes())
    assert copy.notes == ["kept"]
    numpy.testing.assert_array_equal(copy.model.get_param("W"), toy.model.get_param("W"))
    # A standalone save holds the vocab too, as a folder.
    toy.to_disk(tmp_path / "whole")
    assert (tmp_path / "whole" / "vocab").is_dir() and Toy().from_disk(tmp_path / "whole").notes == ["kept"]


@pytest.mark.parametrize("part", ["cfg", "model", "notes.json"])
@pytest.mark.parametrize("checksums", [True, False])
def test_a_damaged_part_is_named_in_an_artifact_error(tmp_path, monkeypatch, part, checksums):
    _saved(tmp_path)
    if not checksums:  # loaded unverified by the user's choice
        (tmp_path / "toy" / CHECKSUMS_FILE).unlink()
        monkeypatch.setenv(ALLOW_UNVERIFIED_ENV, "1")
    (tmp_path / "toy" / part).write_bytes(b"\x00\xff not a part")
    expected = "checksum" if checksums else "truncated, corrupted or was not written by spacy-seqlab"
    with pytest.raises(ArtifactError, match=rf"component 'toy'.*{tmp_path / 'toy' / part}.*{expected}"):
        Toy().from_disk(tmp_path / "toy", exclude=["vocab"])
    (tmp_path / "toy" / part).unlink()
    with pytest.raises(ArtifactError, match=rf"component 'toy'.*{tmp_path / 'toy' / part} is missing"):
        Toy().from_disk(tmp_path / "toy", exclude=["vocab"])


@pytest.mark.parametrize("part", ["cfg", "model", "notes.json"])
def test_a_damaged_bytes_entry_is_named_in_an_artifact_error(monkeypatch, part):
    monkeypatch.setenv(ALLOW_UNVERIFIED_ENV, "1")  # bytes without checksums, loaded unverified by choice
    msg = srsly.msgpack_loads(Toy().to_bytes())
    del msg[CHECKSUMS_KEY]
    msg[part] = b"\x00\xff not a part"
    with pytest.raises(
        ArtifactError,
        match=rf"Cannot load component 'toy': the '{part}' entry of the bytes of component 'toy' is truncated",
    ):
        Toy().from_bytes(srsly.msgpack_dumps(msg))
    del msg[part]
    with pytest.raises(ArtifactError, match=rf"the bytes of component 'toy': the '{part}' entry is missing"):
        Toy().from_bytes(srsly.msgpack_dumps(msg))


def test_a_non_finite_loss_is_refused_naming_the_batch():
    examples = [Example(Doc(VOCAB, words=["a", "b"]), Doc(VOCAB, words=["a", "b"]))]
    assert Toy().get_loss(examples, 1.5) == (1.5, None)
    with pytest.raises(
        ValueError, match=r"Component 'toy' got a non-finite loss \(nan\) on a batch of 1 docs starting with 'a b "
    ):
        Toy().get_loss(examples, float("nan"))


class Recorder(Toy):
    """Predicts each Doc's length and records the batches it was asked to predict."""

    SORTED_BATCHES = 16

    def __init__(self, fail_on: int = -1) -> None:
        super().__init__("recorder")
        self.batches, self.fail_on = [], fail_on

    def predict(self, docs):
        self.batches.append([len(doc) for doc in docs])
        if any(len(doc) == self.fail_on for doc in docs):
            raise ValueError("cannot predict")
        return [len(doc) for doc in docs]

    def set_annotations(self, docs, lengths):
        for doc, n in zip(docs, lengths):
            doc.user_data["n"] = n


def _docs(lengths):
    return [Doc(VOCAB, words=["w"] * n) if n else Doc(VOCAB, words=[]) for n in lengths]


def test_pipe_predicts_length_sorted_batches_and_keeps_the_order():
    lengths = [int(n) for n in numpy.random.default_rng(0).integers(0, 40, size=100)]
    pipe = Recorder()
    out = list(pipe.pipe(iter(_docs(lengths)), batch_size=8))
    assert [doc.user_data["n"] for doc in out] == lengths == [len(doc) for doc in out]
    assert all(batch == sorted(batch) for batch in pipe.batches) and sum(map(len, pipe.batches)) == 100
    # Batches of one read-ahead window do not overlap in length: each forward call pads little.
    first = pipe.batches[: Recorder.SORTED_BATCHES]
    assert all(a[-1] <= b[0] for a, b in zip(first, first[1:]))


def test_pipe_sends_a_failed_batch_to_the_error_handler_like_spacy():
    lengths = [3, 5, 7, 9]
    with pytest.raises(ValueError, match="cannot predict"):
        list(Recorder(fail_on=7).pipe(iter(_docs(lengths)), batch_size=2))
    seen = []
    pipe = Recorder(fail_on=7)
    pipe.set_error_handler(lambda name, proc, docs, err: seen.append([len(d) for d in docs]))
    out = list(pipe.pipe(iter(_docs(lengths)), batch_size=2))
    assert seen == [[7, 9]] and [len(doc) for doc in out] == [3, 5]


def test_without_read_ahead_the_pipe_predicts_spacys_batches_as_they_come():
    class AsSpacy(Recorder):
        SORTED_BATCHES = 1

    pipe = AsSpacy()
    out = list(pipe.pipe(iter(_docs([5, 1, 4, 2, 3])), batch_size=2))
    assert pipe.batches == [[5, 1], [4, 2], [3]] and [len(doc) for doc in out] == [5, 1, 4, 2, 3]


def test_pipe_returns_freed_heap_once_per_read_ahead_window_before_yielding(monkeypatch):
    import spacy_seqlab.core.pipe as pipe_module

    events = []
    monkeypatch.setattr(pipe_module, "release_freed_heap", lambda: events.append("trim"))
    pipe = Recorder()
    for doc in pipe.pipe(iter(_docs(list(range(1, 41)))), batch_size=2):  # windows of 16 × 2 = 32 Docs
        events.append(len(doc))
    assert events == ["trim", *range(1, 33), "trim", *range(33, 41)]
