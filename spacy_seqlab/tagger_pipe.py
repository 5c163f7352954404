"""The trainable pipe shared by the token-classification factories.

A :class:`SequenceTagger` owns a model ``Docs → per-token label probabilities`` and handles
what every tagger needs: labels from ``initialize`` (data or ``[initialize.components]``),
gold read through a :class:`~spacy_seqlab.targets.Target` (misaligned or unannotated tokens
are ignored by the loss, never read as ``O``), cross-entropy, argmax decoding with
seqeval-strict repair, writing to the target, and seqeval scoring.
"""

import warnings
from itertools import islice
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy
import srsly
from spacy.language import Language
from spacy.parts_of_speech import IDS as UPOS_IDS
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.util import ensure_path
from spacy.vocab import Vocab
from thinc.api import Model, Optimizer, Softmax_v2, set_dropout_rate
from thinc.types import Floats2d, Ints1d

from .schemes import REPAIRS, TagSet
from .scoring import make_seqeval_scorer
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


def cross_entropy(ops: Any, probs: Floats2d, gold: numpy.ndarray) -> Tuple[float, Floats2d]:
    """Summed cross-entropy of softmax outputs ``probs`` against ids ``gold`` (-1: ignored), and its
    gradient with respect to the softmax inputs."""
    gold = ops.asarray1i(gold)
    rows = ops.xp.nonzero(gold >= 0)[0]
    d_probs = probs.copy()
    d_probs[rows, gold[rows]] -= 1.0
    d_probs[gold < 0] = 0.0
    loss = float(-ops.xp.log(ops.xp.clip(probs[rows, gold[rows]], 1e-12, None)).sum())
    return loss, d_probs


def head_layer(nO: Optional[int], learn_rate_factor: float) -> Model:
    """A softmax output layer that learns at ``learn_rate_factor`` times the optimizer's rate.

    It starts at zero, so with a pre-trained backbone and a short budget it would otherwise
    barely move (Adam moves each weight by about the learning rate per step).
    """
    if not isinstance(learn_rate_factor, (int, float)) or learn_rate_factor <= 0:
        raise ValueError(f"head_learn_rate_factor must be positive, got {learn_rate_factor!r}")
    layer = Softmax_v2(nO=nO)
    layer.attrs["lr_scale"] = float(learn_rate_factor)
    return layer


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
    :class:`~spacy_seqlab.serialization.ArtifactError` naming the component, the file and the fix,
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


class SequenceTagger(LabeledPipe):
    """Predicts one label per token and writes them to ``doc.ents``, ``doc.spans[KEY]``, ``tag_`` or ``pos_``."""

    def __init__(
        self,
        vocab: Vocab,
        model: Model[List[Doc], List[Floats2d]],
        name: str,
        *,
        target: str = "ents",
        scheme: Optional[str] = None,
        repair: str = "strict",
        scorer: Optional[Callable] = None,
    ) -> None:
        self.vocab = vocab
        self.model = model
        self.name = name
        parsed = Target.parse(target)
        scheme = parsed.check_scheme(scheme or parsed.default_scheme)
        if repair not in REPAIRS:
            raise ValueError(f"repair must be one of {', '.join(REPAIRS)}, got {repair!r}")
        self.cfg: Dict[str, Any] = {"labels": [], "target": target, "scheme": scheme, "repair": repair}
        self.scorer = scorer if scorer is not None else make_seqeval_scorer(target=target, scheme=scheme)
        self._tagset: Optional[TagSet] = None

    @property
    def tagset(self) -> TagSet:
        if self._tagset is None or self._tagset.labels != list(self.labels):
            self._tagset = TagSet(self.labels, self.cfg["scheme"])
        return self._tagset

    # -- prediction ----------------------------------------------------------------------

    def predict(self, docs: Iterable[Doc]) -> List[Ints1d]:
        """One tag id per token for each Doc (does not modify the Docs)."""
        docs = list(docs)
        if not self.labels:
            raise ValueError(f"Component '{self.name}' has no labels: initialize it (nlp.initialize) or load a trained pipeline")
        if not any(len(doc) for doc in docs):
            return [self.model.ops.alloc1i(len(doc)) for doc in docs]
        scores = self.model.predict(docs)
        n_tags = len(self.tagset)  # models may append auxiliary outputs after the tag columns
        return [numpy.asarray(self.model.ops.to_numpy(s[:, :n_tags]).argmax(axis=1), dtype=numpy.int64) for s in scores]

    def set_annotations(self, docs: Iterable[Doc], tag_ids: List[Ints1d]) -> None:
        target, tagset, repair = self.target, self.tagset, self.cfg["repair"]
        for doc, ids in zip(docs, tag_ids):
            target.write(doc, numpy.asarray(ids, dtype=numpy.int64), tagset, repair=repair)

    # -- training ------------------------------------------------------------------------

    def update(
        self,
        examples: Iterable[Example],
        *,
        drop: float = 0.0,
        sgd: Optional[Optimizer] = None,
        losses: Optional[Dict[str, float]] = None,
    ) -> Dict[str, float]:
        if losses is None:
            losses = {}
        losses.setdefault(self.name, 0.0)
        examples = list(examples)
        validate_examples(examples, "SequenceTagger.update")
        if not any(len(eg.predicted) for eg in examples):
            return losses
        set_dropout_rate(self.model, drop)
        scores, backprop = self.model.begin_update([eg.predicted for eg in examples])
        loss, d_scores = self.get_loss(examples, scores)
        if not numpy.isfinite(loss):
            raise ValueError(
                f"Component '{self.name}' got a non-finite loss ({loss}) on a batch of {len(examples)} docs starting "
                f"with {examples[0].predicted.text[:60]!r}: lower the learning rate or check the data"
            )
        backprop(d_scores)
        if sgd not in (None, False):
            self.finish_update(sgd)
        losses[self.name] += loss
        return losses

    def get_loss(self, examples: Iterable[Example], scores: List[Floats2d]) -> Tuple[float, List[Floats2d]]:
        """Cross-entropy (summed over tokens) against gold tag ids; tokens with no gold get no gradient."""
        validate_examples(examples, "SequenceTagger.get_loss")
        ops = self.model.ops
        gold = self._batch_gold_ids(examples)
        probs = ops.xp.concatenate(scores) if scores else ops.alloc2f(0, len(self.tagset))
        loss, d_probs = cross_entropy(ops, probs, gold)
        return loss, split_rows(d_probs, [len(s) for s in scores])

    def _batch_gold_ids(self, examples: Sequence[Example]) -> numpy.ndarray:
        """Gold tag ids of a batch, concatenated (-1: ignored); one warning counts the gold tags
        whose labels the component does not have."""
        parts, unknown = [], 0
        for example in examples:
            tags = self.target.gold_tags(example, self.cfg["scheme"])
            ids = self.tagset.encode(tags, unknown="missing")
            unknown += sum(1 for tag, i in zip(tags, ids) if tag is not None and i < 0)
            parts.append(ids)
        if unknown:
            warnings.warn(f"[{self.name}] {unknown} gold tag(s) with labels outside {list(self.labels)} are ignored in the loss")
        return numpy.concatenate(parts) if parts else numpy.zeros(0, numpy.int64)

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
        labels: Optional[Sequence[str]] = None,
    ) -> None:
        """Take labels from ``labels`` (``[initialize.components]``) or the data, then load the model's weights."""
        validate_get_examples(get_examples, "SequenceTagger.initialize")
        self._require_examples(get_examples)
        target, scheme = self.target, self.cfg["scheme"]
        if labels is not None:
            found = list(labels)
        else:
            found = sorted({label for eg in get_examples() for label in target.labels_in(eg.reference, scheme)})
        if not found:
            raise ValueError(
                f"Component '{self.name}' found no labels for target {target} in the training data; check the "
                f"target setting or give labels in [initialize.components.{self.name}]"
            )
        if target.kind == "pos":
            not_upos = [label for label in found if label not in UPOS_IDS or not label]
            if not_upos:
                raise ValueError(
                    f"Component '{self.name}' has target pos: its labels must be Universal POS tags "
                    f"({', '.join(sorted(t for t in UPOS_IDS if t))}); not UPOS: {not_upos}"
                )
        self.cfg["labels"] = found
        for label in found:
            self.vocab.strings.add(label)
        self._tagset = None
        doc_sample = [eg.predicted for eg in islice(get_examples(), 10)]
        output_layer = self.model.get_ref("output_layer")
        if output_layer.has_dim("nO") and output_layer.get_dim("nO") != len(self.tagset):
            raise ValueError(
                f"Component '{self.name}': model.nO = {output_layer.get_dim('nO')} does not fit the {len(self.tagset)} tags of the "
                f"labels {found} in scheme {self.cfg['scheme']}; leave nO unset (null): it is set from the labels"
            )
        output_layer.set_dim("nO", len(self.tagset))
        self.model.initialize(X=doc_sample)

    def finish_update(self, sgd: Optimizer) -> None:
        """Like ``Model.finish_update``, honouring each layer's ``lr_scale`` (heads, signal embeddings)."""
        for node in self.model.walk():
            for shim in node.shims:
                shim.finish_update(sgd)
        for node in self.model.walk():
            scale = node.attrs.get("lr_scale", 1.0)
            for name in node.param_names:
                if node.has_grad(name):
                    param, _ = sgd((node.id, name), node.get_param(name), node.get_grad(name), lr_scale=scale)
                    node.set_param(name, param)

    def add_label(self, label: str) -> int:
        if not isinstance(label, str):
            raise ValueError(f"Labels must be strings, got {label!r}")
        if label in self.labels:
            return 0
        self._allow_extra_label()
        self.cfg["labels"].append(label)
        self.vocab.strings.add(label)
        self._tagset = None
        return 1

    def _allow_extra_label(self) -> None:
        if self.model.get_ref("output_layer").has_dim("nO"):
            raise ValueError(f"Cannot add a label to '{self.name}' after it was initialized: its output layer is sized")
