"""The base of every trainable seqlab component: labels and a target in ``cfg``, and guarded serialization."""

from typing import Any, Callable, Dict, Iterable, List, Sequence, Tuple

import numpy
import srsly
from spacy.pipeline import TrainablePipe
from spacy.training import Example
from spacy.util import ensure_path

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


class LabeledPipe(TrainablePipe):
    """What every seqlab component shares: labels and a target in ``self.cfg``, and guarded
    serialization.

    Saving records the labels with the weights and a SHA-256 of every file (``checksums.json``;
    in bytes, a ``checksums`` entry). Loading checks them first, and any failure to read a file
    (truncated, corrupted, from another pipeline, a base model that moved) is raised as an
    :class:`~spacy_seqlab.core.serialization.ArtifactError` naming the component, the file and the fix,
    never as a raw msgpack, JSON or torch error. Nothing is unpickled.
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

    # -- serialization -------------------------------------------------------------------

    def _extra_data(self) -> Dict[str, bytes]:
        """Files a subclass saves beside ``cfg`` and ``model``, by file name (also the bytes key)."""
        return {}

    def _load_extra_data(self, name: str, data: bytes) -> None:
        """Restore one of :meth:`_extra_data`'s entries."""

    def _artifact_error(self, where: Any, err: Exception) -> ArtifactError:
        """``err``, raised while reading ``where``, as an error that says what is wrong and what to do."""
        if isinstance(err, ArtifactError):
            message = f"Cannot load component '{self.name}' from {where}: {err}"
            if isinstance(err, BaseModelUnavailableError):
                setting = "model.backbone.name" if self.model.has_ref("backbone") else "model.name"
                message += f", e.g. spacy.load(PIPELINE, config={{'components.{self.name}.{setting}': '/where/the/base/is/now'}})"
            return ArtifactError(message)
        return ArtifactError(
            f"Cannot load component '{self.name}': {where} is truncated, corrupted or was not written by "
            f"spacy-seqlab ({type(err).__name__}: {err}); {REPAIR_HINT}"
        )

    def _read(self, where: Any, load: Callable[[], Any]) -> Any:
        try:
            return load()
        except Exception as err:  # msgpack, JSON, unicode, safetensors, torch, thinc structure errors
            raise self._artifact_error(where, err) from err

    def _check_labels(self, where: Any) -> None:
        saved = self.model.attrs.get(LABELS_ATTR)
        if saved is not None and list(saved) != list(self.labels):
            raise ArtifactError(
                f"Cannot load component '{self.name}': the weights in {where} were trained for the labels {list(saved)}, "
                f"but its cfg has the labels {list(self.labels)}: the files come from different pipelines. Restore the "
                "component's directory as it was saved (cfg and model together), or train the component again"
            )

    def to_disk(self, path: Any, *, exclude: Iterable[str] = tuple()) -> None:
        path = ensure_path(path)
        self.model.attrs[LABELS_ATTR] = list(self.labels)
        path.mkdir(parents=True, exist_ok=True)
        for name, data in self._extra_data().items():
            (path / name).write_bytes(data)
        super().to_disk(path, exclude=exclude)
        write_checksums(path)

    def from_disk(self, path: Any, *, exclude: Iterable[str] = tuple()) -> "LabeledPipe":
        path = ensure_path(path)
        exclude = list(exclude)
        self._read(path, lambda: verify_checksums(path, exclude))
        files = ["cfg", "model", *self._extra_data()]
        for name in files:
            if name.split(".")[0] not in exclude and not (path / name).is_file():
                raise self._artifact_error(path, ArtifactError(f"{path / name} is missing; {REPAIR_HINT}"))
        if "cfg" not in exclude:
            self._read(path / "cfg", lambda: self.cfg.update(srsly.read_json(path / "cfg")))
        if "vocab" not in exclude:
            self.vocab.from_disk(path / "vocab", exclude=exclude)
        for name in files[2:]:
            if name.split(".")[0] not in exclude:
                self._read(path / name, lambda name=name: self._load_extra_data(name, (path / name).read_bytes()))
        if "model" not in exclude:
            self._read(path / "model", lambda: self.model.from_bytes((path / "model").read_bytes()))
            self._check_labels(path / "model")
        return self

    def to_bytes(self, *, exclude: Iterable[str] = tuple()) -> bytes:
        self.model.attrs[LABELS_ATTR] = list(self.labels)
        msg = srsly.msgpack_loads(super().to_bytes(exclude=exclude))
        msg.update(self._extra_data())
        return srsly.msgpack_dumps(add_bytes_checksums(msg))

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = tuple()) -> "LabeledPipe":
        exclude = list(exclude)
        where = f"the bytes of component '{self.name}'"
        msg = self._read(where, lambda: srsly.msgpack_loads(bytes_data))
        if not isinstance(msg, dict):
            raise self._artifact_error(where, ArtifactError(f"expected a table of entries, found {type(msg).__name__}; {REPAIR_HINT}"))
        self._read(where, lambda: verify_bytes_checksums(msg, exclude))
        keys = ["cfg", "model", *self._extra_data()]
        for key in keys:
            if key.split(".")[0] not in exclude and key not in msg:
                raise self._artifact_error(where, ArtifactError(f"the {key!r} entry is missing; {REPAIR_HINT}"))
        if "cfg" not in exclude:
            self._read(f"the 'cfg' entry of {where}", lambda: self.cfg.update(srsly.json_loads(msg["cfg"])))
        if "vocab" not in exclude and "vocab" in msg:
            self.vocab.from_bytes(msg["vocab"], exclude=exclude)
        for key in keys[2:]:
            if key.split(".")[0] not in exclude:
                self._read(f"the {key!r} entry of {where}", lambda key=key: self._load_extra_data(key, msg[key]))
        if "model" not in exclude:
            self._read(f"the 'model' entry of {where}", lambda: self.model.from_bytes(msg["model"]))
            self._check_labels(f"the 'model' entry of {where}")
        return self

    def _require_examples(self, get_examples: Callable[[], Iterable[Example]]) -> None:
        """Raise a clear error when the training data holds no example at all (rather than a
        misleading one about labels or signals later)."""
        if next(iter(get_examples()), None) is None:
            raise ValueError(
                f"Component '{self.name}' got an empty training set: the training corpus yielded no examples. "
                "Check that [paths.train] (or [corpora.train]) names a non-empty file and that the reader's "
                "limit and max_length settings keep some documents"
            )


