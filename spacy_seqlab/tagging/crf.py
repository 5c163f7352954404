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
from typing import Callable, List, Optional, Tuple

import numpy
import torch
from thinc.api import Model, Ops, torch2xp, xp2torch
from thinc.types import Floats1d, Floats2d, Ints1d

from ..core.schemes import TagSet
from .chain import IMPOSSIBLE, ChainScores, log_partition, pad

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


def emission_scores(probs: List[Floats2d]) -> List[torch.Tensor]:
    """Per Doc, the log of the softmax probabilities as torch tensors (on the arrays' device)."""
    return [torch.log(torch.clamp(xp2torch(p), min=MIN_PROB)) for p in probs]


def chain_scores(
    tagset: TagSet, like: torch.Tensor, transitions: Optional[Tuple[torch.Tensor, ...]] = None
) -> ChainScores:
    """The tag set's masks with the (pairs, start, end) ``transitions`` as tensors; zeros when None
    (the chain of a softmax tagger: each sequence scored by its tags' probabilities alone)."""
    allowed, first, last = (torch.as_tensor(mask, device=like.device) for mask in tagset.transition_mask())
    if transitions is None:
        k = len(tagset)
        transitions = (like.new_zeros(k, k), like.new_zeros(k), like.new_zeros(k))
    return ChainScores(*transitions, allowed, first, last)


def transition_tensors(transitions: Transitions, like: torch.Tensor) -> Tuple[torch.Tensor, ...]:
    """The transition arrays as tensors of ``like``'s type (no copy on CPU)."""
    return tuple(xp2torch(a).to(like.dtype) for a in (transitions.pairs, transitions.start, transitions.end))


def crf_loss(
    ops: Ops, probs: List[Floats2d], gold: List[Ints1d], transitions: Transitions, tagset: TagSet
) -> Tuple[float, List[Floats2d], Transitions]:
    """Summed negative log-likelihood of the gold tags (-1: unknown) under the CRF, its gradient with
    respect to the softmax inputs per Doc, and its gradient with respect to the transitions.

    Raises a ValueError when a Doc's gold tags are not a well-formed sequence of the scheme.
    """
    if not probs or not any(len(p) for p in probs):
        zeros = Transitions(ops.alloc2f(*transitions.pairs.shape), ops.alloc1f(len(tagset)), ops.alloc1f(len(tagset)))
        return 0.0, [ops.alloc2f(len(p), len(tagset)) for p in probs], zeros
    lengths = [len(p) for p in probs]
    live = [i for i, n in enumerate(lengths) if n]
    emissions, n_tokens = pad([e.detach() for e in emission_scores([probs[i] for i in live])])
    emissions.requires_grad_(True)
    params = tuple(p.detach().clone().requires_grad_(True) for p in transition_tensors(transitions, emissions))
    chain = chain_scores(tagset, emissions, params)
    gold_ids = torch.nn.utils.rnn.pad_sequence(
        [torch.as_tensor(numpy.asarray(gold[i]), device=emissions.device) for i in live],
        batch_first=True,
        padding_value=-1,
    )
    # The gold score: emissions of every tag but the gold one are impossible where gold is known.
    known = (gold_ids >= 0).unsqueeze(2)
    is_gold = torch.nn.functional.one_hot(gold_ids.clamp(min=0), len(tagset)).bool()
    gold_emissions = torch.where(known & ~is_gold, IMPOSSIBLE, emissions)
    log_z = log_partition(emissions, n_tokens, chain)
    log_gold = log_partition(gold_emissions, n_tokens, chain)
    bad = torch.nonzero(log_gold < IMPOSSIBLE / 2).flatten().tolist()
    if bad:
        ids = numpy.asarray(gold[live[bad[0]]])
        tags = [tagset.tags[i] if i >= 0 else "?" for i in ids]
        raise ValueError(
            f"decoder crf: the gold tags of a training Doc are not a well-formed {tagset.scheme} sequence "
            f"({len(bad)} Doc(s) in this batch), e.g. {tags[:20]}: fix the data or use decoder viterbi or argmax"
        )
    loss = (log_z - log_gold).sum()
    loss.backward()
    d_emissions = [torch2xp(emissions.grad[j, :n]) for j, n in enumerate(n_tokens.tolist())]
    d_probs = [ops.alloc2f(n, len(tagset)) for n in lengths]
    for j, i in enumerate(live):
        d_probs[i] = ops.asarray2f(d_emissions[j])
    # A batch of one-token Docs never uses the pair scores: no gradient is a zero one.
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    d_pairs, d_start, d_end = (ops.asarray(torch2xp(g), dtype="float32") for g in grads)
    return float(loss.item()), d_probs, Transitions(d_pairs, d_start, d_end)
