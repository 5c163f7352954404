"""From a tagger's output to tags and spans: the three decoders and the span confidences.

* ``viterbi`` (default): the most probable sequence that the label scheme allows, scoring a sequence
  by the product of its tags' softmax probabilities (a chain with zero transition scores and the
  scheme's masks). For plain tags (POS) every sequence is allowed and this is ``argmax``.
* ``crf``: Viterbi under the learned CRF transitions (:mod:`.crf`), masked the same way.
* ``argmax``: each token's most probable tag; an ill-formed sequence is read with ``repair``.

Each predicted span gets a confidence, the probability that the span's tokens carry exactly its tags
and the next token does not continue it, by forward-backward (:func:`~.chain.span_log_marginals`):
under the CRF for ``crf``; for ``viterbi`` and ``argmax`` under the softmax tagger's own chain
(zero transitions, the scheme's masks), i.e. the span's probability among the well-formed sequences.
A ``temperature`` T divides every score of the chain before forward-backward (temperature scaling,
Guo et al., 2017): T > 1 softens over-confident marginals; the decoded tags do not change, since
dividing every sequence's score by T keeps their order. Everything runs on the padded batch at once
(:mod:`.chain`).
"""

import math
from dataclasses import dataclass
from typing import Any, List, Optional, Tuple

import numpy
from thinc.api import Ops
from thinc.backends import get_array_ops
from thinc.types import Floats2d

from ..core.schemes import TagSet
from .chain import ChainScores, pad, span_log_marginals, viterbi
from .crf import Transitions, chain_scores, emission_scores, transition_arrays

DECODERS = ("viterbi", "crf", "argmax")
# One Doc's spans: (starts, ends exclusive, label ids).
Chunks = Tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]


@dataclass
class DecodedDoc:
    """One Doc's prediction: a tag id per token, and for span schemes the spans (starts, ends
    exclusive, label ids, in order) with one confidence in [0, 1] each."""

    tag_ids: numpy.ndarray
    starts: numpy.ndarray
    ends: numpy.ndarray
    label_ids: numpy.ndarray
    scores: numpy.ndarray

    @classmethod
    def tags_only(cls, tag_ids: numpy.ndarray) -> "DecodedDoc":
        empty = numpy.zeros(0, dtype=numpy.int64)
        return cls(tag_ids, empty, empty, empty, numpy.zeros(0, dtype=numpy.float32))


def decode(
    ops: Ops,
    probs: List[Floats2d],
    tagset: TagSet,
    decoder: str,
    *,
    transitions: Optional[Transitions] = None,
    repair: str = "strict",
    temperature: float = 1.0,
) -> List[DecodedDoc]:
    """Decode a batch of per-token tag probabilities with ``decoder`` (``transitions``: the CRF's, for
    ``crf``), with span confidences for span schemes (at ``temperature``)."""
    if decoder not in DECODERS:
        raise ValueError(f"decoder must be one of {', '.join(DECODERS)}, got {decoder!r}")
    check_temperature(temperature)
    live = [i for i, p in enumerate(probs) if len(p)]
    ids = [numpy.zeros(len(p), dtype=numpy.int64) for p in probs]
    if not live:
        return [DecodedDoc.tags_only(i) for i in ids]
    if decoder == "argmax" or (decoder == "viterbi" and not tagset.is_span):
        # Without constraints or transitions the best sequence is each token's best tag.
        for i in live:
            ids[i] = numpy.asarray(ops.to_numpy(probs[i]).argmax(axis=1), dtype=numpy.int64)
        if not tagset.is_span:
            return [DecodedDoc.tags_only(i) for i in ids]
    emissions, lengths = pad(emission_scores(ops, [probs[i] for i in live]))
    chain = _chain(ops, tagset, decoder, transitions, emissions.dtype)
    if decoder != "argmax":
        best = viterbi(emissions, lengths, chain)
        for j, i in enumerate(live):
            ids[i] = best[j, : len(probs[i])]
    if not tagset.is_span:
        return [DecodedDoc.tags_only(i) for i in ids]
    chunks = [tagset.chunks(i, repair=repair) for i in ids]
    scores = _confidences(emissions, lengths, chain, tagset, [chunks[i] for i in live], temperature)
    per_doc = [numpy.zeros(0, dtype=numpy.float32)] * len(ids)
    for j, i in enumerate(live):
        per_doc[i] = scores[j]
    return [
        DecodedDoc(i, *(numpy.asarray(a, dtype=numpy.int64) for a in chunk), s)
        for i, chunk, s in zip(ids, chunks, per_doc)
    ]


def span_confidences(
    probs: List[Floats2d],
    tagset: TagSet,
    spans: List[Chunks],
    decoder: str = "viterbi",
    *,
    transitions: Optional[Transitions] = None,
    temperature: float = 1.0,
) -> List[numpy.ndarray]:
    """The confidence ``decoder`` gives each of the given spans at ``temperature``, per Doc: ``spans``
    holds each Doc's (starts, ends, label ids) of non-overlapping spans, e.g. gold spans, or spans a
    decoder did not pick."""
    if not tagset.is_span:
        raise ValueError(f"Scheme {tagset.scheme!r} has no spans")
    check_temperature(temperature)
    live = [i for i, p in enumerate(probs) if len(p)]
    out = [numpy.zeros(0, dtype=numpy.float32)] * len(probs)
    if not live:
        return out
    ops = get_array_ops(probs[live[0]])
    emissions, lengths = pad(emission_scores(ops, [probs[i] for i in live]))
    chain = _chain(ops, tagset, decoder, transitions, emissions.dtype)
    scores = _confidences(emissions, lengths, chain, tagset, [spans[i] for i in live], temperature)
    for j, i in enumerate(live):
        out[i] = scores[j]
    return out


def _chain(ops: Ops, tagset: TagSet, decoder: str, transitions: Optional[Transitions], dtype: Any) -> ChainScores:
    if decoder == "crf":
        if transitions is None:
            raise ValueError("decoder crf needs the model's transition scores: the model has no CRF layer")
        return chain_scores(tagset, dtype, transition_arrays(ops, transitions))
    return chain_scores(tagset, dtype)


def check_temperature(temperature: float) -> float:
    """A confidence temperature must be a finite number above 0."""
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 < temperature < math.inf:
        raise ValueError(f"confidence temperature must be a finite number above 0, got {temperature!r}")
    return float(temperature)


def _confidences(
    emissions: numpy.ndarray,
    lengths: numpy.ndarray,
    chain: ChainScores,
    tagset: TagSet,
    spans: List[Chunks],
    temperature: float = 1.0,
) -> List[numpy.ndarray]:
    """Per padded Doc, the marginal probability of each of its spans under ``chain`` at ``temperature``."""
    # The spans' own well-formed tags (argmax's repaired reading; Viterbi's output as it is).
    tags = numpy.zeros(emissions.shape[:2], dtype=numpy.int64)
    for j, (n, chunk) in enumerate(zip(lengths.tolist(), spans)):
        tags[j, :n] = tagset.span_tag_ids(n, *chunk)
    counts = [len(chunk[0]) for chunk in spans]
    rows = numpy.zeros((sum(counts), 3), dtype=numpy.int64)
    rows[:, 0] = numpy.repeat(numpy.arange(len(spans)), counts)
    rows[:, 1] = numpy.concatenate([numpy.asarray(chunk[0], dtype=numpy.int64) for chunk in spans])
    rows[:, 2] = numpy.concatenate([numpy.asarray(chunk[1], dtype=numpy.int64) for chunk in spans])
    tempered = emissions / temperature if temperature != 1.0 else emissions
    log_p = span_log_marginals(tempered, lengths, chain.tempered(temperature), tags, tagset.continuation_mask(), rows)
    scores = numpy.clip(numpy.exp(log_p), 0.0, 1.0).astype(numpy.float32)
    return numpy.split(scores, numpy.cumsum(counts)[:-1])
