"""seqeval scoring for spaCy pipelines: ``spacy_seqlab.seqeval_scorer.v1``.

Papers on sequence labeling report **seqeval, strict mode** (IOB2 or IOBES), while spaCy
reports its own exact-span numbers (``ents_f``, ``spans_sc_f``, ``tag_acc``). This scorer
returns both, so a pipeline can be trained and selected on seqeval's F
(``[training.score_weights] seqeval_f = 1.0``) and compared with published numbers.

How the tags handed to seqeval are made:

* gold: :meth:`Target.gold_tags` on the predicted tokenization; a missing or misaligned
  gold token becomes ``O`` (what seqeval sees in a CoNLL file of the same tokens), or,
  with scheme ``tags``, is left out of the accuracy. An example with no gold annotation
  at all for the target is skipped, as spaCy's own scorers skip it.
* predicted: :meth:`Target.doc_tags` of ``example.predicted``; a token with no tag
  (``""``) becomes ``O``.
* seqeval cannot score overlapping spans: overlapping ``doc.spans[KEY]`` are resolved to
  the longest (spaCy's ``spans_KEY_*`` numbers beside them keep the overlaps).

Zero division: seqeval's own rule, ``zero_division=0`` (the values of its default
``"warn"``, without the warning): P is 0.0 with no predicted spans, R is 0.0 with no gold
spans, F is 0.0 when P + R is 0. So empty input scores 0.0, not ``None``.
"""

import re
from itertools import chain
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from seqeval.metrics.v1 import precision_recall_fscore_support
from seqeval.scheme import IOB2, IOBES, Entities
from spacy.scorer import Scorer, get_ner_prf
from spacy.training import Example
from spacy.util import registry

from .schemes import OUTSIDE, split_tag, validate_scheme
from .targets import Target

SEQEVAL_SCHEMES = {"iob2": IOB2, "bioes": IOBES}
# seqeval's IOBES reader knows only the E/S spelling; spaCy writes BILUO (L/U).
_BIOES_SPELLING = {"L": "E", "U": "S"}
_PREFIX_PATTERN = re.compile(r"^[A-Za-z0-9_]*seqeval[A-Za-z0-9_]*$")

ScoreFn = Callable[[Iterable[Example]], Dict[str, Any]]


def _seqeval_tags(tags: Sequence[str], scheme: str) -> List[str]:
    """Validate one sequence and spell it the way seqeval's ``scheme`` reader expects."""
    out = []
    for tag in tags:
        prefix, label = split_tag(tag)
        if prefix == OUTSIDE:
            out.append(OUTSIDE)
        elif scheme == "iob2" and prefix not in ("B", "I"):
            raise ValueError(f"Tag {tag!r} is not an IOB2 tag (B-, I- or O): score it with scheme='bioes'")
        else:
            out.append(f"{_BIOES_SPELLING.get(prefix, prefix)}-{label}")
    return out


def seqeval_prf(gold: List[List[str]], pred: List[List[str]], scheme: str = "iob2") -> Dict[str, Any]:
    """Micro and per-type P/R/F of ``pred`` against ``gold`` with seqeval in strict mode.

    ``gold`` and ``pred`` are sentences of tags of the same lengths. ``scheme`` is
    ``"iob2"`` (seqeval's ``IOB2``) or ``"bioes"`` (seqeval's ``IOBES``; spaCy's BILUO
    spelling L/U is accepted). Returns ``p``, ``r``, ``f`` (floats, ``zero_division=0``),
    ``per_type`` (``{label: {"p", "r", "f"}}``, every label in gold or prediction) and the
    entity counts ``n_gold``, ``n_pred``, ``n_correct``.
    """
    validate_scheme(scheme, allow_tags=False)
    if len(gold) != len(pred):
        raise ValueError(f"Got {len(gold)} gold sentences but {len(pred)} predicted ones")
    for i, (gold_tags, pred_tags) in enumerate(zip(gold, pred)):
        if len(gold_tags) != len(pred_tags):
            raise ValueError(f"Sentence {i}: {len(gold_tags)} gold tags but {len(pred_tags)} predicted tags")
    if not gold:
        # seqeval rejects an empty corpus; its value for "no spans anywhere" is this.
        return {"p": 0.0, "r": 0.0, "f": 0.0, "per_type": {}, "n_gold": 0, "n_pred": 0, "n_correct": 0}
    seqeval_scheme = SEQEVAL_SCHEMES[scheme]
    gold_seqs = [_seqeval_tags(tags, scheme) for tags in gold]
    pred_seqs = [_seqeval_tags(tags, scheme) for tags in pred]
    # Entities are read once and shared by the micro and the per-type computation.
    entities_true = Entities(gold_seqs, seqeval_scheme)
    entities_pred = Entities(pred_seqs, seqeval_scheme)
    shared = dict(scheme=seqeval_scheme, zero_division=0, entities_true=entities_true, entities_pred=entities_pred)
    p, r, f, _ = precision_recall_fscore_support(gold_seqs, pred_seqs, average="micro", **shared)
    labels = sorted(entities_true.unique_tags | entities_pred.unique_tags)
    per_type: Dict[str, Dict[str, float]] = {}
    if labels:
        type_p, type_r, type_f, _ = precision_recall_fscore_support(gold_seqs, pred_seqs, average=None, **shared)
        per_type = {
            label: {"p": float(lp), "r": float(lr), "f": float(lf)}
            for label, lp, lr, lf in zip(labels, type_p, type_r, type_f)
        }
    true_set = set(chain.from_iterable(entities_true.entities))
    pred_set = set(chain.from_iterable(entities_pred.entities))
    return {
        "p": float(p),
        "r": float(r),
        "f": float(f),
        "per_type": per_type,
        "n_gold": len(true_set),
        "n_pred": len(pred_set),
        "n_correct": len(true_set & pred_set),
    }


def spacy_scores(examples: List[Example], target: Target) -> Dict[str, Any]:
    """spaCy's own scores for ``target``: what its ner / spancat / tagger / morphologizer scorers return."""
    if target.kind == "ents":
        return get_ner_prf(examples)
    if target.kind == "spans":
        key = target.key
        attr = f"spans_{key}"
        return Scorer.score_spans(
            examples,
            attr,
            getter=lambda doc, _attr: doc.spans.get(key, []),
            has_annotation=lambda doc: key in doc.spans,
            allow_overlap=True,
        )
    return Scorer.score_token_attr(examples, target.kind)


def _spacy_key_stem(target: Target) -> str:
    """The prefix of spaCy's own keys for ``target`` (``ents`` in ``ents_f``)."""
    return f"spans_{target.key}" if target.kind == "spans" else target.kind


def _aligned_tags(
    examples: Iterable[Example], target: Target, scheme: str
) -> Tuple[List[List[Optional[str]]], List[List[str]]]:
    """(gold, predicted) tag sequences of the examples that have gold annotation for ``target``."""
    golds: List[List[Optional[str]]] = []
    preds: List[List[str]] = []
    for example in examples:
        gold = target.gold_tags(example, scheme)
        if gold and all(tag is None for tag in gold):
            continue  # no gold annotation for this target: spaCy's scorers skip it too
        golds.append(gold)
        preds.append(target.doc_tags(example.predicted, scheme))
    return golds, preds


def score_examples(examples: Iterable[Example], target: Target, scheme: str, prefix: str) -> Dict[str, Any]:
    """seqeval scores (``{prefix}_*``) and spaCy's own scores of ``examples`` for ``target``."""
    examples = list(examples)  # read twice: once for seqeval, once for spaCy
    golds, preds = _aligned_tags(examples, target, scheme)
    if scheme == "tags":
        pairs = [(g, p) for gold, pred in zip(golds, preds) for g, p in zip(gold, pred) if g is not None]
        # Undefined without gold tokens: None, as spaCy's tag_acc / pos_acc.
        accuracy = sum(g == p for g, p in pairs) / len(pairs) if pairs else None
        scores: Dict[str, Any] = {f"{prefix}_acc": accuracy}
    else:
        gold_tags = [[tag or OUTSIDE for tag in gold] for gold in golds]
        pred_tags = [[tag or OUTSIDE for tag in pred] for pred in preds]
        try:
            result = seqeval_prf(gold_tags, pred_tags, scheme)
        except ValueError as err:
            raise ValueError(f"Cannot score target {target} with scheme {scheme!r}: {err}") from err
        scores = {f"{prefix}_{key}": result[key] for key in ("p", "r", "f", "per_type")}
    scores.update(spacy_scores(examples, target))
    return scores


@registry.scorers("spacy_seqlab.seqeval_scorer.v1")
def make_seqeval_scorer(target: str = "ents", scheme: str = "iob2", prefix: str = "seqeval") -> ScoreFn:
    """Build a scorer reporting seqeval strict-mode scores beside spaCy's own for ``target``.

    ``target``: ``"ents"``, ``"spans:KEY"``, ``"tag"`` or ``"pos"``. ``scheme``: ``"iob2"``
    or ``"bioes"`` for spans (and for chunk tags such as ``B-NP`` stored in ``token.tag_``),
    ``"tags"`` for plain per-token tags. With a span scheme the scorer returns
    ``{prefix}_p/_r/_f/_per_type``; with ``"tags"``, ``{prefix}_acc`` (token accuracy over
    tokens with gold). ``prefix`` must contain ``seqeval`` (so ``seqlab-evaluate`` finds the
    keys) and differ per component scored in one pipeline.
    """
    parsed = Target.parse(target)
    parsed.check_scheme(scheme)
    if not isinstance(prefix, str) or not _PREFIX_PATTERN.match(prefix):
        raise ValueError(
            f"Invalid scorer prefix {prefix!r}: use letters, digits and underscores, including "
            f"'seqeval' (e.g. 'seqeval' or 'seqeval_chunk'), so the score keys are recognisable"
        )
    if prefix == _spacy_key_stem(parsed):
        raise ValueError(f"Scorer prefix {prefix!r} would overwrite spaCy's own {prefix}_* scores")

    def score(examples: Iterable[Example], **kwargs: Any) -> Dict[str, Any]:
        # kwargs are the component's cfg that spaCy passes to every scorer; none applies here.
        return score_examples(examples, parsed, scheme, prefix)

    return score
