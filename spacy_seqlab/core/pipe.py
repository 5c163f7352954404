"""The base of every trainable seqlab component: labels and a target in ``cfg``, a loss check,
and serialization through one table of named parts read under one guard."""

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy
import srsly
from spacy import util
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc
from spacy.training import Example, validate_examples
from thinc.api import Optimizer

from .batching import length_sorted_batches
from .heap import release_freed_heap
from .serialization import (
    REPAIR_HINT,
    ArtifactError,
    BaseModelUnavailableError,
    add_bytes_checksums,
    verify_bytes_checksums,
    verify_checksums,
    write_checksums,
)
from .targets import Target

# What a tagger's factory declares for `spacy train` to pick model-best.
DEFAULT_SCORE_WEIGHTS = {"seqeval_f": 1.0, "seqeval_p": 0.0, "seqeval_r": 0.0, "seqeval_per_type": None}


def split_rows(array: Any, lengths: Sequence[int]) -> List[Any]:
    """Split a concatenation of per-Doc rows back into one array per Doc."""
    bounds = numpy.cumsum([0] + list(lengths))
    return [array[s:e] for s, e in zip(bounds[:-1], bounds[1:])]


# The labels a component's weights were trained for, stored with the weights (model attrs).
LABELS_ATTR = "seqlab_labels"


@dataclass(frozen=True)
class Part:
    """One saved part of a component: the file ``NAME`` in its directory, the entry ``NAME`` in its bytes.

    ``dump`` gives the content (text or bytes) and ``load`` restores it. A part that is a directory
    on disk (the vocab) has its own ``write`` and ``read``. An ``optional`` part may be absent.
    """

    dump: Callable[[], Union[str, bytes]]
    load: Callable[[Union[str, bytes]], Any]
    write: Optional[Callable[[Path], Any]] = None
    read: Optional[Callable[[Path], Any]] = None
    optional: bool = False

    def write_to(self, path: Path) -> None:
        if self.write is not None:
            self.write(path)
            return
        data = self.dump()
        path.write_bytes(data.encode("utf8") if isinstance(data, str) else data)

    def read_from(self, path: Path) -> None:
        if self.read is not None:
            self.read(path)
        else:
            self.load(path.read_bytes())


class LabeledPipe(TrainablePipe):
    """What every seqlab component shares: labels and a target in ``self.cfg``, a finite-loss
    check, an lr_scale-aware update, and guarded serialization.

    Saving goes through one table of named parts (:meth:`_parts`: ``cfg``, ``vocab``, the
    subclass's :meth:`_extra_parts`, ``model``), written as files or as bytes entries with
    spaCy's ``util.to_disk``/``util.to_dict``, with the labels recorded with the weights and a
    SHA-256 of every part (``checksums.json``; in bytes, a ``checksums`` entry). Loading checks
    them first, then reads each part under one guard, :meth:`_guard`: any failure to read a part
    (truncated, corrupted, from another pipeline, a base model that moved) is raised as an
    :class:`~spacy_seqlab.core.serialization.ArtifactError` naming the component, the file and the
    fix, never as a raw msgpack, JSON or torch error. Nothing is unpickled.
    """

    cfg: Dict[str, Any]

    @property
    def target(self) -> Target:
        return Target.parse(self.cfg["target"])

    @property
    def labels(self) -> Tuple[str, ...]:
        return tuple(self.cfg["labels"])

    @property
    def label_data(self) -> List[str]:
        return list(self.labels)

    def add_label(self, label: str) -> int:
        """Add a label before the component is initialized; 0 if it was there, else 1 (spaCy's convention)."""
        if not isinstance(label, str):
            raise ValueError(f"Labels must be strings, got {label!r}")
        if label in self.labels:
            return 0
        self._allow_extra_label()
        self.cfg["labels"].append(label)
        self.vocab.strings.add(label)
        return 1

    def _require_labels(self) -> None:
        if not self.labels:
            raise ValueError(
                f"Component '{self.name}' found no labels for target {self.target} in the training data; check the "
                f"target setting or give labels in [initialize.components.{self.name}]"
            )

    # How many of spaCy's batches pipe() reads ahead and predicts in order of length (1: as spaCy does).
    SORTED_BATCHES = 1

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 128) -> Iterator[Doc]:
        """Like ``TrainablePipe.pipe``, but predicts ``SORTED_BATCHES`` batches at a time in order of
        length, so that Docs of similar length share a forward call and pad little; Docs come out in
        the order they came in.

        As in spaCy, a batch whose prediction fails goes to the pipe's error handler, and its Docs
        are not yielded when the handler does not raise.
        """
        error_handler = self.get_error_handler()
        for docs in util.minibatch(stream, size=batch_size * self.SORTED_BATCHES):
            failed = numpy.zeros(len(docs), dtype=bool)
            if self.SORTED_BATCHES > 1:
                batches = length_sorted_batches(self.costs(docs), batch_size)
            else:
                batches = [numpy.arange(len(docs))]
            for indices in batches:
                batch = [docs[i] for i in indices]
                try:
                    self.set_annotations(batch, self.predict(batch))
                except Exception as err:
                    error_handler(self.name, self, batch, err)
                    failed[indices] = True
            # Without this, RSS creeps up over a long stream (freed activations stay in the allocator).
            release_freed_heap()
            yield from (doc for doc, bad in zip(docs, failed) if not bad)

    def costs(self, docs: Sequence[Doc]) -> Sequence[int]:
        """What each Doc costs in a forward call, the key ``pipe()`` sorts by: its tokens here; a pipe
        whose model reads sub-words counts those, since Docs of as many tokens can differ in pieces."""
        return [len(doc) for doc in docs]

    def _require_examples(self, get_examples: Callable[[], Iterable[Example]]) -> None:
        """Raise a clear error when the training data holds no example at all (rather than a
        misleading one about labels or signals later)."""
        if next(iter(get_examples()), None) is None:
            raise ValueError(
                f"Component '{self.name}' got an empty training set: the training corpus yielded no examples. "
                "Check that [paths.train] (or [corpora.train]) names a non-empty file and that the reader's "
                "limit and max_length settings keep some documents"
            )

    # -- training: spaCy's TrainablePipe.update calls get_loss, then backprop, then finish_update --

    def get_loss(self, examples: Iterable[Example], scores: Any) -> Tuple[float, Any]:
        """:meth:`compute_loss`, refused when it is not finite: before any gradient reaches the weights."""
        examples = list(examples)
        validate_examples(examples, f"{type(self).__name__}.get_loss")
        loss, gradient = self.compute_loss(examples, scores)
        if not math.isfinite(loss):
            start = repr(examples[0].predicted.text[:60]) if examples else "''"
            raise ValueError(
                f"Component '{self.name}' got a non-finite loss ({loss}) on a batch of {len(examples)} docs starting "
                f"with {start}: lower the learning rate or check the data"
            )
        return loss, gradient

    def compute_loss(self, examples: List[Example], scores: Any) -> Tuple[float, Any]:
        """The loss of a batch and its gradient with respect to ``scores``."""
        raise NotImplementedError(f"{type(self).__name__} does not compute a loss")

    def finish_update(self, sgd: Optimizer) -> None:
        """Like ``Model.finish_update``, honouring each layer's ``lr_scale`` (heads, signal embeddings).

        thinc's ``Model.finish_update`` calls the optimizer without a layer's ``lr_scale``, so it is
        replaced here rather than used.
        """
        for node in self.model.walk():
            for shim in node.shims:
                shim.finish_update(sgd)
        for node in self.model.walk():
            scale = node.attrs.get("lr_scale", 1.0)
            for name in node.param_names:
                if node.has_grad(name):
                    param, _ = sgd((node.id, name), node.get_param(name), node.get_grad(name), lr_scale=scale)
                    node.set_param(name, param)

    # -- serialization -------------------------------------------------------------------

    def _parts(self, exclude: Iterable[str]) -> Dict[str, Part]:
        """The component's saved parts, in the order they are restored (cfg first, the model last)."""
        exclude = list(exclude)
        return {
            "cfg": Part(
                lambda: srsly.json_dumps(self.cfg, indent=2), lambda data: self.cfg.update(srsly.json_loads(data))
            ),
            "vocab": Part(
                lambda: self.vocab.to_bytes(exclude=exclude),
                lambda data: self.vocab.from_bytes(data, exclude=exclude),
                write=lambda path: self.vocab.to_disk(path, exclude=exclude),
                read=lambda path: self.vocab.from_disk(path, exclude=exclude),
                optional=True,
            ),
            **self._extra_parts(),
            "model": Part(self.model.to_bytes, self._load_model),
        }

    def _extra_parts(self) -> Dict[str, Part]:
        """Parts a subclass saves beside cfg and model, by file name (also the bytes key)."""
        return {}

    def _load_model(self, data: Union[str, bytes]) -> None:
        self.model.from_bytes(data)
        saved = self.model.attrs.get(LABELS_ATTR)
        if saved is not None and list(saved) != list(self.labels):
            raise ArtifactError(
                f"the weights were trained for the labels {list(saved)}, but its cfg has the labels "
                f"{list(self.labels)}: the files come from different pipelines. Restore the component's directory "
                "as it was saved (cfg and model together), or train the component again"
            )

    def _guard(self, where: Any, read: Callable[[], Any]) -> Any:
        """``read()``; any error, raised while reading ``where``, as one that says what is wrong and what to do."""
        try:
            return read()
        except Exception as err:  # msgpack, JSON, unicode, safetensors, torch, thinc structure errors
            if isinstance(err, ArtifactError):
                message = f"Cannot load component '{self.name}' from {where}: {err}"
                if isinstance(err, BaseModelUnavailableError):
                    setting = "model.backbone.name" if self.model.has_ref("backbone") else "model.name"
                    message += (
                        f", e.g. spacy.load(PIPELINE, config={{'components.{self.name}.{setting}': "
                        "'/where/the/base/is/now'})"
                    )
                raise ArtifactError(message) from err
            raise ArtifactError(
                f"Cannot load component '{self.name}': {where} is truncated, corrupted or was not written by "
                f"spacy-seqlab ({type(err).__name__}: {err}); {REPAIR_HINT}"
            ) from err

    @staticmethod
    def _require_parts(
        parts: Dict[str, Part], exclude: Iterable[str], present: Callable[[str], bool], describe: Callable[[str], str]
    ) -> None:
        for name, part in parts.items():
            if not part.optional and name.split(".")[0] not in exclude and not present(name):
                raise ArtifactError(f"{describe(name)} is missing; {REPAIR_HINT}")

    def to_disk(self, path: Any, *, exclude: Iterable[str] = tuple()) -> None:
        self.model.attrs[LABELS_ATTR] = list(self.labels)
        util.ensure_path(path).mkdir(parents=True, exist_ok=True)
        path = util.to_disk(path, {name: part.write_to for name, part in self._parts(exclude).items()}, exclude)
        write_checksums(path)

    def from_disk(self, path: Any, *, exclude: Iterable[str] = tuple()) -> "LabeledPipe":
        path, exclude = util.ensure_path(path), list(exclude)
        parts = self._parts(exclude)

        def check() -> None:
            verify_checksums(path, exclude)
            self._require_parts(parts, exclude, lambda name: (path / name).exists(), lambda name: str(path / name))

        self._guard(path, check)
        readers = {
            name: (lambda file, part=part: self._guard(file, lambda: part.read_from(file)))
            for name, part in parts.items()
            if not part.optional or (path / name).exists()
        }
        util.from_disk(path, readers, exclude)
        return self

    def to_bytes(self, *, exclude: Iterable[str] = tuple()) -> bytes:
        self.model.attrs[LABELS_ATTR] = list(self.labels)
        msg = util.to_dict({name: part.dump for name, part in self._parts(exclude).items()}, exclude)
        return srsly.msgpack_dumps(add_bytes_checksums(msg))

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = tuple()) -> "LabeledPipe":
        exclude = list(exclude)
        parts = self._parts(exclude)
        where = f"the bytes of component '{self.name}'"

        def unpack() -> Dict[str, Any]:
            msg = srsly.msgpack_loads(bytes_data)
            if not isinstance(msg, dict):
                raise ArtifactError(f"expected a table of entries, found {type(msg).__name__}; {REPAIR_HINT}")
            verify_bytes_checksums(msg, exclude)
            self._require_parts(parts, exclude, msg.__contains__, lambda name: f"the {name!r} entry")
            return msg

        msg = self._guard(where, unpack)
        setters = {
            name: (
                lambda data, name=name, part=part: self._guard(
                    f"the {name!r} entry of {where}", lambda: part.load(data)
                )
            )
            for name, part in parts.items()
        }
        util.from_dict(msg, setters, exclude)
        return self
