"""The trainable pipe shared by the token-classification factories.

A :class:`SequenceTagger` owns a model ``Docs → per-token label probabilities`` and handles
what every tagger needs: labels from ``initialize`` (data or ``[initialize.components]``),
gold read through a :class:`~spacy_seqlab.core.targets.Target` (misaligned or unannotated tokens
are ignored by the loss, never read as ``O``), cross-entropy, argmax decoding with
seqeval-strict repair, writing to the target, and seqeval scoring.
"""

import warnings
from itertools import islice
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy
from spacy.language import Language
from spacy.parts_of_speech import IDS as UPOS_IDS
from spacy.tokens import Doc
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.vocab import Vocab
from thinc.api import Model, Optimizer, Softmax_v2, set_dropout_rate
from thinc.types import Floats2d, Ints1d

from ..core.pipe import LabeledPipe, split_rows
from ..core.schemes import REPAIRS, TagSet
from ..core.scoring import make_seqeval_scorer
from ..core.targets import Target


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
