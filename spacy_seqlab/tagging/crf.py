"""The CRF head of ``decoder = "crf"``: learned transition scores and their loss.

The tagger's softmax gives per-token log-probabilities, the emission scores; the
:func:`crf_transitions` layer holds the scores of each tag pair and of each first and last tag.
Together they define a linear-chain CRF (Lafferty et al., 2001), trained with the negative
log-likelihood of the gold sequence (:func:`crf_loss`) and decoded by Viterbi. Transitions the
label scheme forbids are masked (:class:`~.chain.ChainScores`), so a CRF never decodes an
ill-formed sequence and never spends probability on one.

Emissions are log-softmax outputs rather than raw logits: a per-token constant cancels in a CRF, so
the model is the same, and the gradient with respect to the emissions (marginals minus gold, zero
sum per token) is also the gradient with respect to the logits, which the softmax layer takes.
Tokens without gold (misaligned, unannotated) are marginalized over: the gold score sums all allowed
sequences that agree with the known tags.
"""

from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Tuple

import numpy
from thinc.api import Model, Ops
from thinc.types import Floats1d, Floats2d, Ints1d

from ..core.schemes import TagSet
from .chain import IMPOSSIBLE, ChainScores, marginals, pad

# Softmax probabilities are clipped here before their log: an emission is never -inf.
MIN_PROB = 1e-30


@dataclass
class Transitions:
    """CRF transition scores (or their gradients): ``pairs[prev, next]``, ``start``, ``end``."""

    pairs: Floats2d
    start: Floats1d
    end: Floats1d


def crf_transitions(nO: Optional[int] = None) -> Model[None, Transitions]:
    """A layer holding the transition scores over ``nO`` tags, starting at zero (a plain softmax
    tagger with the scheme's constraints); called with no input, it returns them."""
    return Model(
        "crf_transitions",
        _forward_transitions,
        init=_init_transitions,
        dims={"nO": nO},
        params={"pairs": None, "start": None, "end": None},
    )


def _init_transitions(model: Model, X: None = None, Y: None = None) -> None:
    n = model.get_dim("nO")
    model.set_param("pairs", model.ops.alloc2f(n, n))
    model.set_param("start", model.ops.alloc1f(n))
    model.set_param("end", model.ops.alloc1f(n))


def _forward_transitions(model: Model, X: None, is_train: bool) -> Tuple[Transitions, Callable]:
    scores = Transitions(model.get_param("pairs"), model.get_param("start"), model.get_param("end"))

    def backprop(d_scores: Transitions) -> None:
        model.inc_grad("pairs", d_scores.pairs)
        model.inc_grad("start", d_scores.start)
        model.inc_grad("end", d_scores.end)

    return scores, backprop


def emission_scores(ops: Ops, probs: List[Floats2d]) -> List[numpy.ndarray]:
    """Per Doc, the log of the softmax probabilities (as numpy arrays, where the chain runs)."""
    return [numpy.log(numpy.clip(ops.to_numpy(p), MIN_PROB, None)) for p in probs]


def chain_scores(tagset: TagSet, dtype: Any, transitions: Optional[Tuple[numpy.ndarray, ...]] = None) -> ChainScores:
    """The tag set's masks with the (pairs, start, end) ``transitions``; zeros when None (the chain
    of a softmax tagger: each sequence scored by its tags' probabilities alone)."""
    allowed, first, last = tagset.transition_mask()
    k = len(tagset)
    if transitions is None:
        transitions = (numpy.zeros((k, k), dtype=dtype), numpy.zeros(k, dtype=dtype), numpy.zeros(k, dtype=dtype))
    return ChainScores(*(numpy.asarray(a, dtype=dtype) for a in transitions), allowed, first, last)


def transition_arrays(ops: Ops, transitions: Transitions) -> Tuple[numpy.ndarray, ...]:
    """The transition scores as numpy arrays."""
    return tuple(ops.to_numpy(a) for a in (transitions.pairs, transitions.start, transitions.end))


def crf_loss(
    ops: Ops, probs: List[Floats2d], gold: List[Ints1d], transitions: Transitions, tagset: TagSet
) -> Tuple[float, List[Floats2d], Transitions]:
    """Summed negative log-likelihood of the gold tags (-1: unknown) under the CRF, its gradient with
    respect to the softmax inputs per Doc, and its gradient with respect to the transitions.

    The gradients are the model's expectations minus the gold-constrained ones (forward-backward).
    Raises a ValueError when a Doc's gold tags are not a well-formed sequence of the scheme.
    """
    k = len(tagset)
    lengths = [len(p) for p in probs]
    live = [i for i, n in enumerate(lengths) if n]
    d_probs = [ops.alloc2f(n, k) for n in lengths]
    if not live:
        return 0.0, d_probs, Transitions(ops.alloc2f(k, k), ops.alloc1f(k), ops.alloc1f(k))
    emissions, n_tokens = pad(emission_scores(ops, [probs[i] for i in live]))
    chain = chain_scores(tagset, emissions.dtype, transition_arrays(ops, transitions))
    gold_ids = numpy.full(emissions.shape[:2], -1, dtype=numpy.int64)
    for j, i in enumerate(live):
        gold_ids[j, : lengths[i]] = numpy.asarray(gold[i])
    # The gold score: emissions of every tag but the gold one are impossible where gold is known.
    off_gold = (gold_ids[:, :, None] >= 0) & (gold_ids[:, :, None] != numpy.arange(k))
    log_z, tags, pairs, ends = marginals(emissions, n_tokens, chain)
    log_gold, gold_tags, gold_pairs, gold_ends = marginals(
        numpy.where(off_gold, IMPOSSIBLE, emissions), n_tokens, chain
    )
    bad = numpy.flatnonzero(log_gold < IMPOSSIBLE / 2)
    if len(bad):
        tag_names = [tagset.tags[i] if i >= 0 else "?" for i in numpy.asarray(gold[live[bad[0]]])]
        raise ValueError(
            f"decoder crf: the gold tags of a training Doc are not a well-formed {tagset.scheme} sequence "
            f"({len(bad)} Doc(s) in this batch), e.g. {tag_names[:20]}: fix the data or use decoder viterbi or argmax"
        )
    d_emissions = tags - gold_tags
    for j, i in enumerate(live):
        d_probs[i] = ops.asarray2f(d_emissions[j, : lengths[i]].astype("float32"))
    d_pairs = (pairs - gold_pairs) * chain.allowed
    d_start, d_end = (ends[0] - gold_ends[0]) * chain.first, (ends[1] - gold_ends[1]) * chain.last
    d_transitions = Transitions(*(ops.asarray(a.astype("float32")) for a in (d_pairs, d_start, d_end)))
    return float((log_z - log_gold).sum()), d_probs, d_transitions
