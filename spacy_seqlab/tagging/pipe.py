"""The token-classification pipe behind ``seqlab_bidir_tagger`` and ``seqlab_multitask_ner``.

A :class:`SequenceTagger` owns a ``spacy_seqlab.Tagger.v1`` model (Docs → :class:`TaggerOutput`)
and does what every tagger needs: labels from ``initialize`` (data or ``[initialize.components]``),
gold read through a :class:`~spacy_seqlab.core.targets.Target` (misaligned or unannotated tokens
are ignored by the loss, never read as ``O``), cross-entropy on the tags (or, with ``decoder =
"crf"``, the CRF's negative log-likelihood) plus each auxiliary head's, decoding (:mod:`.decoding`:
viterbi, crf or argmax), writing to the target with a confidence per span, and seqeval scoring.
Training is spaCy's ``TrainablePipe.update``.

Span confidences are stored as spaCy's ``spancat`` stores scores, in a span group's
``attrs["scores"]`` (one float per span, in the group's order): for a ``spans:KEY`` target in
``doc.spans[KEY]`` itself; for ``ents``, in ``doc.spans[NAME]`` (NAME: the component's name), a
group holding the same spans as ``doc.ents``.
"""

import warnings
from dataclasses import asdict, dataclass
from itertools import islice
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy
from spacy.language import Language
from spacy.parts_of_speech import IDS as UPOS_IDS
from spacy.tokens import Doc, Span
from spacy.training import Example, validate_get_examples
from spacy.vocab import Vocab
from thinc.api import CategoricalCrossentropy, Ops
from thinc.types import Floats2d, Ints1d

from ..core.batching import length_sorted_batches
from ..core.calibration import correct_spans, fit_temperature
from ..core.pipe import LabeledPipe, split_rows
from ..core.schemes import REPAIRS, TagSet
from ..core.scoring import make_seqeval_scorer
from ..core.settings import check_choice, setting
from ..core.targets import TARGET_FORMS, Target
from ..hf.model import find_hf_model
from ..hf.pieces import count_pieces
from .crf import crf_loss
from .decoding import DecodedDoc, decode, span_confidences
from .model import BACKBONE_SAMPLE, DECODER_ATTR, TaggerModel, TaggerOutput, signal_vocabs, tagger_signals
from .signals import MissingSignalError, SignalVocab, signal_gold

# Docs run through the upstream pipes at initialize, for the signals' vocabularies (and gold, for the head's prior).
SIGNAL_SAMPLE = 500


@dataclass
class TargetSettings:
    """Where a tagger's labels live on a Doc and how its tags are read."""

    target: str = setting("ents", f"Where the labels live: {', '.join(TARGET_FORMS)}.")
    scheme: Optional[str] = setting(
        None, "Tag scheme: iob2 or bioes for span targets, tags for tag/pos; null: iob2 for spans, tags otherwise."
    )
    repair: str = setting(
        "strict",
        "How an ill-formed predicted tag sequence (decoder argmax; viterbi and crf predict none) is read: "
        "'strict' (seqeval strict) or 'lenient' (conlleval).",
    )

    def __post_init__(self) -> None:
        parsed = Target.parse(self.target)
        self.scheme = parsed.check_scheme(self.scheme or parsed.default_scheme)
        check_choice("repair", self.repair, REPAIRS)


def cross_entropy(ops: Ops, probs: List[Floats2d], gold: List[Ints1d]) -> Tuple[float, List[Floats2d]]:
    """Summed cross-entropy of softmax outputs against gold ids (-1: no gold) and its gradient with
    respect to the softmax inputs, per Doc.

    The gradient is thinc's ``CategoricalCrossentropy`` (unnormalized, -1 masked), over the whole
    batch at once. The loss is computed here: thinc's is the sum of the squared gradients, not
    the cross-entropy.
    """
    if not probs:
        return 0.0, []
    flat = ops.xp.concatenate(probs)
    ids = ops.asarray1i(numpy.concatenate([numpy.asarray(g) for g in gold]))
    d_flat = CategoricalCrossentropy(normalize=False, missing_value=-1).get_grad(flat, ids)
    rows = ops.xp.nonzero(ids >= 0)[0]
    loss = -float(ops.xp.log(ops.xp.clip(flat[rows, ids[rows]], 1e-12, None)).sum())
    return loss, split_rows(d_flat, [len(p) for p in probs])


class SequenceTagger(LabeledPipe):
    """Predicts one label per token and writes them to ``doc.ents``, ``doc.spans[KEY]``, ``tag_`` or ``pos_``."""

    # Short texts in one forward call, long ones in another: a tagger's cost is its padded length.
    SORTED_BATCHES = 16

    def __init__(
        self,
        vocab: Vocab,
        model: TaggerModel,
        name: str,
        *,
        settings: Optional[TargetSettings] = None,
        scorer: Optional[Callable] = None,
    ) -> None:
        self.vocab = vocab
        self.model = model
        self.name = name
        settings = settings if settings is not None else TargetSettings()
        # The span confidences' temperature: fitted state (calibrate), saved in cfg, not a setting.
        self.cfg: Dict[str, Any] = {"labels": [], **asdict(settings), "confidence_temperature": 1.0}
        self.scorer = (
            scorer if scorer is not None else make_seqeval_scorer(target=settings.target, scheme=settings.scheme)
        )
        self._tagset: Optional[TagSet] = None

    @property
    def tagset(self) -> TagSet:
        if self._tagset is None or self._tagset.labels != list(self.labels):
            self._tagset = TagSet(self.labels, self.cfg["scheme"])
        return self._tagset

    # -- prediction ----------------------------------------------------------------------

    def costs(self, docs: Sequence[Doc]) -> Sequence[int]:
        """Sub-word pieces per Doc: sorting by tokens mixes Docs of very different piece counts (URLs,
        hashtags), and each forward call is padded to its longest."""
        hf_model = find_hf_model(self.model)
        if hf_model is None or not hf_model.loaded:
            return super().costs(docs)
        return count_pieces(docs, hf_model)

    @property
    def decoder(self) -> str:
        return self.model.attrs.get(DECODER_ATTR, "argmax")

    def predict(self, docs: Iterable[Doc]) -> List[DecodedDoc]:
        """Each Doc's tag ids, and for span targets its spans with their confidences (does not modify the Docs)."""
        docs = list(docs)
        if not self.labels:
            raise ValueError(
                f"Component '{self.name}' has no labels: initialize it (nlp.initialize) or load a trained pipeline"
            )
        if not any(len(doc) for doc in docs):
            return [DecodedDoc.tags_only(numpy.zeros(len(doc), dtype=numpy.int64)) for doc in docs]
        try:
            output: TaggerOutput = self.model.predict(docs)
        except MissingSignalError as err:
            raise err.naming(self.name) from None
        return decode(
            self.model.ops,
            output.tags,
            self.tagset,
            self.decoder,
            transitions=output.transitions,
            repair=self.cfg["repair"],
            temperature=self.cfg.get("confidence_temperature", 1.0),
        )

    def calibrate(self, docs: Sequence[Doc], gold: Sequence[Doc], *, batch_size: int = 64) -> Dict[str, Any]:
        """Fit the span confidences' temperature on held-out Docs and keep it in
        ``cfg["confidence_temperature"]`` (saved with the component); the predicted spans do not change.

        ``docs``: the texts as the pipes before this one annotated them (signals read them); ``gold``:
        the same texts annotated. Returns :func:`~spacy_seqlab.core.calibration.fit_temperature`'s
        record (temperature, log loss and ECE before and after)."""
        if not self.target.is_span:
            raise ValueError(f"Component '{self.name}' has target {self.target}: its tags have no span confidences")
        if len(docs) != len(gold):
            raise ValueError(f"Got {len(docs)} Docs to predict but {len(gold)} gold Docs")
        self._require_labels()
        pairs = [(doc, ref) for doc, ref in zip(docs, gold) if len(doc)]
        probs: List[Floats2d] = [self.model.ops.alloc2f(0, len(self.tagset))] * len(pairs)
        transitions = None
        for indices in length_sorted_batches(self.costs([doc for doc, _ in pairs]), batch_size):
            try:
                output: TaggerOutput = self.model.predict([pairs[i][0] for i in indices])
            except MissingSignalError as err:
                raise err.naming(self.name) from None
            for i, tags in zip(indices, output.tags):
                probs[i] = tags
            transitions = output.transitions
        decoder, tagset = self.decoder, self.tagset
        decoded = decode(self.model.ops, probs, tagset, decoder, transitions=transitions, repair=self.cfg["repair"])
        correct: List[bool] = []
        for (doc, ref), predicted in zip(pairs, decoded):
            starts, ends, ids = (a.tolist() for a in (predicted.starts, predicted.ends, predicted.label_ids))
            found = [Span(doc, s, e, tagset.labels[i]) for s, e, i in zip(starts, ends, ids)]
            correct += correct_spans(found, [Span(ref, s, e, label) for s, e, label in self.target.doc_spans(ref)])
        spans = [(d.starts, d.ends, d.label_ids) for d in decoded]

        def confidences_at(temperature: float) -> numpy.ndarray:
            per_doc = span_confidences(probs, tagset, spans, decoder, transitions=transitions, temperature=temperature)
            return numpy.concatenate(per_doc) if per_doc else numpy.zeros(0)

        fit = fit_temperature(confidences_at, correct)
        self.cfg["confidence_temperature"] = fit["temperature"]
        return fit

    def set_annotations(self, docs: Iterable[Doc], predictions: List[DecodedDoc]) -> None:
        target, tagset, repair = self.target, self.tagset, self.cfg["repair"]
        for doc, predicted in zip(docs, predictions):
            if not target.is_span:
                target.write(doc, numpy.asarray(predicted.tag_ids, dtype=numpy.int64), tagset, repair=repair)
                continue
            labels = [tagset.labels[i] for i in predicted.label_ids]
            spans = [
                Span(doc, int(s), int(e), label=lab) for s, e, lab in zip(predicted.starts, predicted.ends, labels)
            ]
            target.write_spans(doc, spans, scores=predicted.scores, scores_key=self.name)

    # -- training ------------------------------------------------------------------------

    def compute_loss(self, examples: List[Example], scores: TaggerOutput) -> Tuple[float, TaggerOutput]:
        """Cross-entropy on the tags (tokens with no gold get no gradient; with the crf decoder, the CRF's
        negative log-likelihood, tokens with no gold marginalized), plus each auxiliary head's cross-entropy,
        weighted; a head learns the upstream values of the predicted Docs."""
        ops = self.model.ops
        gold = self._gold_ids(examples)
        d_transitions = None
        if self.decoder == "crf":
            try:
                loss, d_tags, d_transitions = crf_loss(ops, scores.tags, gold, scores.transitions, self.tagset)
            except ValueError as err:
                raise ValueError(f"Component '{self.name}': {err}") from None
        else:
            loss, d_tags = cross_entropy(ops, scores.tags, gold)
        d_auxiliary: Dict[str, List[Floats2d]] = {}
        vocabs = signal_vocabs(self.model)
        for name, signal in tagger_signals(self.model).items():
            if not signal.has_head:
                continue
            gold = [self._signal_gold(eg.predicted, signal.source, vocabs[name]) for eg in examples]
            head_loss, d_head = cross_entropy(ops, scores.auxiliary[name], gold)
            loss += signal.loss_weight * head_loss
            d_auxiliary[name] = [d * signal.loss_weight for d in d_head]
        return loss, TaggerOutput(d_tags, d_auxiliary, d_transitions)

    def _gold_ids(self, examples: Sequence[Example]) -> List[numpy.ndarray]:
        """Gold tag ids per Doc (-1: ignored); one warning counts the gold tags whose labels the
        component does not have."""
        gold, unknown = [], 0
        for example in examples:
            tags = self.target.gold_tags(example, self.cfg["scheme"])
            ids = self.tagset.encode(tags, unknown="missing")
            unknown += sum(1 for tag, i in zip(tags, ids) if tag is not None and i < 0)
            gold.append(ids)
        if unknown:
            warnings.warn(
                f"[{self.name}] {unknown} gold tag(s) with labels outside {list(self.labels)} are ignored in the loss",
                stacklevel=2,
            )
        return gold

    def _signal_gold(self, doc: Doc, source: str, vocab: SignalVocab) -> numpy.ndarray:
        gold = signal_gold(doc, source, vocab)
        if gold is None:
            warnings.warn(
                f"[{self.name}] a training Doc lacks the signal {source!r}: its auxiliary loss is skipped", stacklevel=2
            )
            return numpy.full(len(doc), -1, dtype=numpy.int64)
        return gold

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
        labels: Optional[Sequence[str]] = None,
    ) -> None:
        """Labels from ``labels`` (``[initialize.components]``) or the data; then the model, from a
        sample of Docs run through the upstream pipes when it reads signals."""
        validate_get_examples(get_examples, "SequenceTagger.initialize")
        self._require_examples(get_examples)
        target, scheme = self.target, self.cfg["scheme"]
        if labels is None:
            labels = sorted({label for eg in get_examples() for label in target.labels_in(eg.reference, scheme)})
        if target.kind == "pos":
            not_upos = [label for label in labels if label not in UPOS_IDS or not label]
            if not_upos:
                raise ValueError(
                    f"Component '{self.name}' has target pos: its labels must be Universal POS tags "
                    f"({', '.join(sorted(t for t in UPOS_IDS if t))}); not UPOS: {not_upos}"
                )
        for label in labels:
            self.add_label(label)
        self._require_labels()
        self.cfg["confidence_temperature"] = 1.0  # a new model's confidences are not calibrated
        output_layer = self.model.get_ref("output_layer")
        n_tags = len(self.tagset)
        if output_layer.has_dim("nO") and output_layer.get_dim("nO") != n_tags:
            raise ValueError(
                f"Component '{self.name}': model.nO = {output_layer.get_dim('nO')} does not fit the {n_tags} tags of "
                f"the labels {list(self.labels)} in scheme {scheme}; leave nO unset (null): it is set from the labels"
            )
        output_layer.set_dim("nO", n_tags)
        if tagger_signals(self.model):
            sample = self._annotated_sample(get_examples, nlp)
        else:
            sample = [eg.predicted for eg in islice(get_examples(), BACKBONE_SAMPLE)]
        gold = self._gold_ids(list(islice(get_examples(), SIGNAL_SAMPLE)))  # for the head's prior
        try:
            self.model.initialize(X=sample, Y=gold)
        except MissingSignalError as err:
            raise err.naming(self.name) from None

    def _annotated_sample(self, get_examples: Callable[[], Iterable[Example]], nlp: Optional[Language]) -> List[Doc]:
        """Predicted Docs of the training data, run through the pipes before this one."""
        docs = [eg.predicted.copy() for eg in islice(get_examples(), SIGNAL_SAMPLE)]
        if nlp is None or self.name not in nlp.component_names:
            return docs
        # component_names includes the frozen pipes spacy train disables while initializing.
        upstream = nlp.component_names[: nlp.component_names.index(self.name)]
        for name in upstream:
            proc = nlp.get_pipe(name)
            # Function components (@Language.component) have no .pipe: call them per Doc, as spaCy does.
            docs = list(proc.pipe(docs)) if hasattr(proc, "pipe") else [proc(doc) for doc in docs]
        return docs

    def _allow_extra_label(self) -> None:
        if self.model.get_ref("output_layer").has_param("W"):
            raise ValueError(f"Cannot add a label to '{self.name}' after it was initialized: its output layer is sized")
