"""Linear-chain algorithms over a padded batch of documents, in torch: the forward and backward
recursions (log-space), the log-partition, Viterbi, and the marginal probability of a span.

A document of ``n`` tokens over ``K`` tags has emission scores ``E[t, k]`` (here the log of the
tagger's softmax probabilities) and a :class:`ChainScores`: transition scores ``pairs[prev, next]``,
``start[k]`` and ``end[k]``, and the scheme's masks of allowed transitions, first and last tags
(:meth:`~spacy_seqlab.core.schemes.TagSet.transition_mask`). A sequence's score is the sum of its
emission, transition, start and end scores; a sequence with a disallowed transition, first or last
tag has probability zero and is never decoded.

Everything runs on a batch padded to ``N`` positions with per-document ``lengths``: one torch step
per position, vectorised over documents and tags (no loop over documents or tag pairs). Padded
positions carry the last real position's values through, so the results of a document do not
depend on what it is batched with.
"""

from dataclasses import dataclass
from typing import List, Tuple

import torch
from torch import Tensor

# A finite stand-in for log(0): the forward and backward sums stay free of inf - inf (NaN gradients),
# and any sequence through a masked entry scores below -1e8, far under every allowed one.
IMPOSSIBLE = -1e9


@dataclass
class ChainScores:
    """Transition scores with the scheme's masks: ``pairs[prev, next]``, ``start``, ``end`` (float)
    and ``allowed[prev, next]``, ``first``, ``last`` (bool), all on one device."""

    pairs: Tensor
    start: Tensor
    end: Tensor
    allowed: Tensor
    first: Tensor
    last: Tensor

    def filled(self, value: float = IMPOSSIBLE) -> Tuple[Tensor, Tensor, Tensor]:
        """(pairs, start, end) with every disallowed entry set to ``value``."""
        fill = torch.tensor(value, dtype=self.pairs.dtype, device=self.pairs.device)
        return (
            torch.where(self.allowed, self.pairs, fill),
            torch.where(self.first, self.start, fill),
            torch.where(self.last, self.end, fill),
        )


def pad(rows: List[Tensor]) -> Tuple[Tensor, Tensor]:
    """Per-document ``(n_i, K)`` rows → a ``(B, N, K)`` batch padded with zeros, and the lengths."""
    lengths = torch.tensor([len(r) for r in rows], dtype=torch.long, device=rows[0].device)
    return torch.nn.utils.rnn.pad_sequence(rows, batch_first=True), lengths


def _live(lengths: Tensor, t: int) -> Tensor:
    """``(B, 1)``: whether position ``t`` is a real token of each document."""
    return (t < lengths).unsqueeze(1)


def forward_scores(emissions: Tensor, lengths: Tensor, chain: ChainScores) -> Tensor:
    """α ``(B, N, K)``: log of the summed scores of all prefixes ending in tag k at position t
    (emission at t included); padded positions repeat the last real one."""
    pairs, start, _ = chain.filled()
    alpha = [start + emissions[:, 0]]
    for t in range(1, emissions.shape[1]):
        step = torch.logsumexp(alpha[-1].unsqueeze(2) + pairs, dim=1) + emissions[:, t]
        alpha.append(torch.where(_live(lengths, t), step, alpha[-1]))
    return torch.stack(alpha, dim=1)


def backward_scores(emissions: Tensor, lengths: Tensor, chain: ChainScores) -> Tensor:
    """β ``(B, N, K)``: log of the summed scores of all suffixes after tag k at position t (end
    score included, emission at t excluded); ``end`` at the last real position and beyond."""
    pairs, _, end = chain.filled()
    batch, n, k = emissions.shape
    beta = [end.expand(batch, k)]
    for t in range(n - 2, -1, -1):
        step = torch.logsumexp(pairs + (emissions[:, t + 1] + beta[-1]).unsqueeze(1), dim=2)
        beta.append(torch.where(_live(lengths, t + 1), step, end.expand(batch, k)))
    return torch.stack(beta[::-1], dim=1)


def log_partition(emissions: Tensor, lengths: Tensor, chain: ChainScores) -> Tensor:
    """``(B,)``: log of the summed scores of all well-formed sequences of each document."""
    alpha = forward_scores(emissions, lengths, chain)
    _, _, end = chain.filled()
    return torch.logsumexp(alpha[:, -1] + end, dim=1)


def viterbi(emissions: Tensor, lengths: Tensor, chain: ChainScores) -> Tensor:
    """``(B, N)`` long: the best-scoring allowed sequence of each document (0 on padding).

    Disallowed entries are -inf here, so no decoded sequence ever contains one: the all-``O``
    sequence (or any sequence, for plain tags) is always allowed.
    """
    pairs, start, end = chain.filled(float("-inf"))
    batch, n, k = emissions.shape
    identity = torch.arange(k, device=emissions.device).expand(batch, k)
    score = start + emissions[:, 0]
    pointers = []
    for t in range(1, n):
        best, best_prev = (score.unsqueeze(2) + pairs).max(dim=1)
        live = _live(lengths, t)
        score = torch.where(live, best + emissions[:, t], score)
        pointers.append(torch.where(live, best_prev, identity))
    tag = (score + end).argmax(dim=1)
    path = [tag]
    for back in reversed(pointers):
        tag = back.gather(1, tag.unsqueeze(1)).squeeze(1)
        path.append(tag)
    tags = torch.stack(path[::-1], dim=1)
    positions = torch.arange(n, device=emissions.device).unsqueeze(0)
    return torch.where(positions < lengths.unsqueeze(1), tags, torch.zeros_like(tags))


def span_log_marginals(
    emissions: Tensor,
    lengths: Tensor,
    chain: ChainScores,
    tags: Tensor,
    continues: Tensor,
    spans: Tensor,
) -> Tensor:
    """Log-probability of each span: that its tokens carry exactly their tags in ``tags`` and the
    token after it (if any) does not continue it.

    ``tags`` ``(B, N)`` must be well-formed; ``continues[prev, next]`` says which tag extends a
    chunk ending in ``prev`` (``I-X`` after ``B-X``/``I-X``); ``spans`` ``(S, 3)`` holds
    (document, start, end) rows, ``end`` exclusive. Returns ``(S,)``.
    """
    if len(spans) == 0:
        return emissions.new_zeros(0)
    pairs, _, end = chain.filled()
    alpha = forward_scores(emissions, lengths, chain)
    beta = backward_scores(emissions, lengths, chain)
    log_z = torch.logsumexp(alpha[:, -1] + end, dim=1)
    # The score of the tag path itself, as a running sum: path[t] covers positions 1..t.
    emitted = emissions.gather(2, tags.unsqueeze(2)).squeeze(2)
    steps = pairs[tags[:, :-1], tags[:, 1:]] + emitted[:, 1:]
    path = torch.cat([emitted.new_zeros(len(tags), 1), steps.cumsum(dim=1)], dim=1)
    # After a span's last tag: every next tag but those that would continue the chunk.
    stop = torch.where(continues[tags[:, :-1]], IMPOSSIBLE, pairs[tags[:, :-1]])
    after = torch.logsumexp(stop + emissions[:, 1:] + beta[:, 1:], dim=2)
    is_last = torch.arange(emissions.shape[1], device=tags.device).unsqueeze(0) == (lengths - 1).unsqueeze(1)
    after = torch.where(is_last, end[tags], torch.cat([after, end[tags[:, -1:]]], dim=1))
    doc, first, last = spans[:, 0], spans[:, 1], spans[:, 2] - 1
    inside = path[doc, last] - path[doc, first]
    return alpha[doc, first, tags[doc, first]] + inside + after[doc, last] - log_z[doc]
